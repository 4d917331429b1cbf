using JasperFx.Events;
using Marten;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Pipeline.Core.Events;

namespace Pipeline.Marketplace.Accounts;

/// <summary>
/// Changes to buyer accounts. Each is a decision on the account as it stands (a pure function returning events), appended
/// with Marten's optimistic concurrency: when another change got in first, the decision is made again on the new state.
/// </summary>
public sealed class MarketAccounts(IDocumentStore store, BuyerKeyCache keys, AccountCache remembered, TimeProvider clock, ILogger<MarketAccounts> logger)
{
    private const int Attempts = 8;

    public TimeProvider Clock => clock;

    public async Task<(BuyerAccount Account, string ApiKey)> CreateBuyerAsync(string name, long credits, CancellationToken cancellation)
    {
        var now = clock.GetUtcNow();
        var buyerId = ApiKeys.NewBuyerId();
        var key = ApiKeys.NewBuyerKey();
        var events = new List<object> { new BuyerCreated(buyerId, name, now), new ApiKeyIssued(buyerId, ApiKeys.NewKeyId(), ApiKeys.Hash(key), "first key", now) };
        if (credits > 0) events.Add(new CreditsAdded(buyerId, credits, "opening balance", now));
        await using var session = store.LightweightSession();
        session.Events.StartStream<BuyerAccount>(buyerId, events);
        await session.SaveChangesAsync(cancellation);
        return ((await FindAsync(buyerId, cancellation))!, key);
    }

    public async Task<BuyerAccount?> FindAsync(string buyerId, CancellationToken cancellation)
    {
        await using var session = store.QuerySession();
        return await session.LoadAsync<BuyerAccount>(buyerId, cancellation);
    }

    public async Task<BuyerAccount> AddCreditsAsync(string buyerId, long credits, string note, CancellationToken cancellation) =>
        await UpdateAsync(buyerId, (_, now) => [new CreditsAdded(buyerId, credits, note, now)], cancellation);

    /// <summary>The buyer's keys, oldest first (revoked ones too).</summary>
    public async Task<IReadOnlyList<BuyerKey>> KeysAsync(string buyerId, CancellationToken cancellation)
    {
        await using var session = store.QuerySession();
        return await session.Query<BuyerKey>().Where(k => k.BuyerId == buyerId).OrderBy(k => k.IssuedAt).ToListAsync(cancellation);
    }

    /// <summary>
    /// Live keys an account may hold: enough to rotate keys and give each service its own, while the account document —
    /// rewritten at every charge and remembered by every replica — and the key lookups stay small whatever a buyer sends.
    /// </summary>
    public const int MaxLiveKeys = 20;

    public async Task<(BuyerKey Key, string Secret)> IssueKeyAsync(string buyerId, string label, CancellationToken cancellation)
    {
        var secret = ApiKeys.NewBuyerKey();
        var keyId = ApiKeys.NewKeyId();
        await AppendAsync(buyerId, (account, now) => account.LiveKeys.Count < MaxLiveKeys
            ? [new ApiKeyIssued(buyerId, keyId, ApiKeys.Hash(secret), label, now)]
            : throw new MarketRefusedException(StatusCodes.Status409Conflict, MarketReason.TooManyKeys,
                $"The account holds {MaxLiveKeys} live keys, as many as an account may; revoke one it no longer uses before issuing another."), cancellation);
        return ((await KeyAsync(buyerId, keyId, cancellation))!, secret);
    }

    public async Task<BuyerKey> RevokeKeyAsync(string buyerId, string keyId, CancellationToken cancellation)
    {
        if (await KeyAsync(buyerId, keyId, cancellation) is not { } key)
            throw new MarketRefusedException(StatusCodes.Status404NotFound, MarketReason.UnknownKeyId, $"The account has no key {keyId}.");
        // Decided on the account's live keys, so that a feed's charge decided before the revocation cannot commit after it.
        await AppendAsync(buyerId, (account, now) => account.LiveKeys.Contains(keyId) ? [new ApiKeyRevoked(buyerId, keyId, now)] : [], cancellation);
        keys.Revoked(key.Hash);
        return (await KeyAsync(buyerId, keyId, cancellation))!;
    }

    /// <summary>The buyer's key <paramref name="keyId"/>; null when the buyer has no such key.</summary>
    private async Task<BuyerKey?> KeyAsync(string buyerId, string keyId, CancellationToken cancellation)
    {
        await using var session = store.QuerySession();
        return await session.LoadAsync<BuyerKey>(keyId, cancellation) is { } key && key.BuyerId == buyerId ? key : null;
    }

    /// <summary>
    /// Decides on the account as stored and appends the decision's events with an expected version; retried on a
    /// concurrent change (so <paramref name="decide"/> may run more than once). The account returned includes the new events.
    /// </summary>
    public async Task<BuyerAccount> UpdateAsync(string buyerId, Func<BuyerAccount, DateTimeOffset, IReadOnlyList<object>> decide, CancellationToken cancellation) =>
        await AppendAsync(buyerId, decide, cancellation) ?? (await FindAsync(buyerId, cancellation))!;

    /// <summary>
    /// As <see cref="UpdateAsync"/>, without reading the account back: for charges, whose callers need only that the
    /// events are stored. Returns the account when the decision appended nothing, null otherwise. With
    /// <paramref name="read"/> (the account read when the charged work began), the first decision is made on it and
    /// appended at its version, saving a read; any change since makes that append fail, and the decision is made again
    /// — except on a remembered account (<see cref="ReadForChargeAsync"/>), where a change since or a refusal throws
    /// <see cref="StaleAccountException"/> instead, for the work to be done again on the account as stored.
    /// <paramref name="alongside"/> queues more work on the session, to commit or fail with the events (an export job's move to done).
    /// </summary>
    public async Task<BuyerAccount?> AppendAsync(string buyerId, Func<BuyerAccount, DateTimeOffset, IReadOnlyList<object>> decide, CancellationToken cancellation, AccountRead? read = null,
        Action<IDocumentSession>? alongside = null)
    {
        for (var attempt = 1; ; attempt++)
        {
            await using var fresh = attempt == 1 && read is not null ? null : await ReadForChangeAsync(buyerId, cancellation);
            var current = fresh ?? read!;
            if (current.Account is not { } account)
                throw new MarketRefusedException(StatusCodes.Status404NotFound, MarketReason.UnknownBuyer, $"There is no buyer {buyerId}.");
            IReadOnlyList<object> events;
            try
            {
                events = decide(account, clock.GetUtcNow());
            }
            catch (MarketRefusedException) when (current.Remembered)
            {
                // A refusal is decided on the account as stored, never on a copy that may be behind it.
                throw new StaleAccountException();
            }
            if (events.Count == 0) return account;
            current.Append(events);
            alongside?.Invoke(current.Session);
            try
            {
                await current.Session.SaveChangesAsync(cancellation);
            }
            catch (JasperFx.ConcurrencyException) when (current.Remembered)
            {
                remembered.Forget(buyerId);
                throw new StaleAccountException();
            }
            catch (JasperFx.ConcurrencyException) when (attempt < Attempts)
            {
                // Another charge or purchase changed the account first: decide again on what it is now.
                logger.LogDebug("Account {Buyer} changed while this change was decided; deciding again on the new state", buyerId);
                continue;
            }
            // Marten applied the events to the account decided on (the projection's identity map), and set its version:
            // the next query of this buyer here runs on it without reading it. Anything else is forgotten, to be read again.
            if (account.Version == current.Version + events.Count) remembered.Remember(account, account.Version);
            else remembered.Forget(buyerId);
            return null;
        }
    }

    /// <summary>The account as stored (null if there is no such buyer) and its version, for a change to be appended at that version.</summary>
    public async Task<AccountRead> ReadForChangeAsync(string buyerId, CancellationToken cancellation)
    {
        // An identity session holds the account read, so the inline projection applies the change to it instead of
        // reading it again (UseIdentityMapForAggregates; a lightweight session read it again, a statement per change).
        var session = store.IdentitySession();
        try
        {
            return new AccountRead(session, await session.Events.FetchForWriting<BuyerAccount>(buyerId, cancellation));
        }
        catch
        {
            await session.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// The account for a query to run on and be charged against: the copy this process remembers from its last charge
    /// or read, without a round trip; otherwise as stored (then remembered). A charge on a remembered copy is appended at
    /// its version, so it commits only when nothing changed the account since.
    /// </summary>
    public async Task<AccountRead> ReadForChargeAsync(string buyerId, CancellationToken cancellation)
    {
        if (remembered.TryGet(buyerId, out var account, out var version))
        {
            // Stored in an identity session (AccountRead.Append), the copy is what the inline projection applies the charge to.
            return new AccountRead(store.IdentitySession(), account, version);
        }
        var read = await ReadForChangeAsync(buyerId, cancellation);
        if (read.Account is { } stored) remembered.Remember(stored, read.Version);
        return read;
    }
}

/// <summary>
/// A buyer's account as read for writing: the session to append in, the account and the stream version it is at — read
/// with FetchForWriting, or remembered by this process (<see cref="MarketAccounts.ReadForChargeAsync"/>).
/// </summary>
public sealed class AccountRead : IAsyncDisposable
{
    private readonly IDocumentSession _session;
    private readonly IEventStream<BuyerAccount>? _stream;

    internal AccountRead(IDocumentSession session, IEventStream<BuyerAccount> stream)
    {
        _session = session;
        _stream = stream;
        Account = stream.Aggregate;
        Version = stream.StartingVersion ?? 0;
    }

    internal AccountRead(IDocumentSession session, BuyerAccount account, long version)
    {
        _session = session;
        Account = account;
        Version = version;
        Remembered = true;
    }

    public BuyerAccount? Account { get; }

    /// <summary>Whether the account is this process's copy rather than read from the store for this change.</summary>
    public bool Remembered { get; }

    internal long Version { get; }

    internal IDocumentSession Session => _session;

    /// <summary>Queues <paramref name="events"/> at the version read: the commit fails if the account changed since.</summary>
    internal void Append(IReadOnlyList<object> events)
    {
        if (_stream is not null)
        {
            _stream.AppendMany(events);
            return;
        }
        // Held by the session, the account is not read again by the inline projection, which applies the events to it.
        _session.Store(Account!);
        _session.Events.Append(Account!.Id, Version + events.Count, events);
    }

    public ValueTask DisposeAsync() => _session.DisposeAsync();
}

/// <summary>A charge decided on a remembered account that changed since: nothing was stored; run it again on the account as stored.</summary>
public sealed class StaleAccountException() : Exception("The account changed since this process remembered it.");
