using System.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.WebUtilities;
using Pipeline.Core.Events;
using Pipeline.Marketplace.Accounts;
using Pipeline.Marketplace.Attribution;
using Pipeline.Marketplace.Catalog;
using Pipeline.Marketplace.Sandbox;

namespace Pipeline.Marketplace.Query;

/// <summary>A query's result, written and paid for: the buffer holding it, what was delivered, and the charge.</summary>
public sealed record ChargedResult(FileBufferingWriteStream Content, QueryResult Result, string? ChargeId, long Credits) : IDisposable
{
    public void Dispose() => Content.Dispose();
}

/// <summary>
/// Runs a buyer's SQL over one grant in the sandbox and charges it. The result is written to a buffer first (memory, or a
/// temporary file when large) and handed out only once the charge is stored, so a buyer never reads a row that was not
/// paid for: when a concurrent charge used the quota in the meantime, the result is dropped and the request refused.
/// </summary>
public sealed class GrantedQueries(MarketAccounts accounts, MarketLake lake, DeviceMakes makes, SandboxPool sandboxes, MarketMetrics metrics)
{
    /// <summary>Results up to this size wait for their charge in pooled memory; a larger one spills to a temporary file.</summary>
    public const int ResultMemoryLimit = 1024 * 1024;

    /// <summary>Runs <paramref name="sql"/> over the grant's rows in the lake now, or as it was at checkpoint <paramref name="asOf"/>.</summary>
    public async Task<ChargedResult> RunAsync(string buyerId, string grantId, string sql, ResultFormat format, long? asOf, MarketplaceOptions options, CancellationToken cancellation)
    {
        // First on the account as this process remembers it, which saves reading it before DuckDB runs; when that copy
        // turns out to be behind the stored account (its charge finds the account changed) or refuses, nothing was
        // released or charged, and the query runs once more on the account as stored.
        try
        {
            return await RunAsync(buyerId, grantId, sql, format, asOf, options, remembered: true, cancellation);
        }
        catch (StaleAccountException)
        {
            return await RunAsync(buyerId, grantId, sql, format, asOf, options, remembered: false, cancellation);
        }
    }

    private async Task<ChargedResult> RunAsync(string buyerId, string grantId, string sql, ResultFormat format, long? asOf, MarketplaceOptions options, bool remembered, CancellationToken cancellation)
    {
        var phases = metrics.StartQuery();
        // The account (to charge at its version) and the lake's snapshot, at once.
        var reading = remembered ? accounts.ReadForChargeAsync(buyerId, cancellation) : accounts.ReadForChangeAsync(buyerId, cancellation);
        var snapshotting = asOf is { } checkpoint ? lake.SnapshotAtAsync(checkpoint, cancellation) : lake.SnapshotAsync(cancellation);
        try
        {
            await Task.WhenAll(reading, snapshotting);
        }
        catch
        {
            if (reading.IsCompletedSuccessfully) await reading.Result.DisposeAsync();
            throw;
        }
        await using var read = reading.Result;
        var snapshot = snapshotting.Result;
        var account = read.Account ?? throw new MarketRefusedException(StatusCodes.Status404NotFound, MarketReason.UnknownBuyer, "The account no longer exists.");
        Grant grant;
        try
        {
            grant = Usable(account, grantId, accounts.Clock.GetUtcNow());
        }
        catch (MarketRefusedException) when (read.Remembered)
        {
            throw new StaleAccountException(); // refused on the account as stored only (a grant bought on another replica is not in the copy)
        }
        phases.End("account");
        var table = await TableAsync(grant, snapshot, cancellation);
        phases.End("lake");

        using var lease = sandboxes.Rent(table, Limits(options));
        var sandbox = lease.Sandbox;
        phases.End("sandbox");
        sandbox.Validate(sql, buyerId);
        phases.End("validate");
        var content = new FileBufferingWriteStream(ResultMemoryLimit);
        try
        {
            var started = Stopwatch.GetTimestamp();
            var result = await sandbox.RunValidatedAsync(sql, format, content, grant.RowsLeft(accounts.Clock.GetUtcNow()), snapshot.Checkpoint, cancellation, lake.EpochLength);
            phases.End("execute");
            // No row of the grant delivered (only the format's framing): nothing to charge, so nothing is recorded. Each
            // empty result was a charge of 0 rows and 0 credits appended to the buyer's stream, events a stranger with a
            // 1-credit grant stored for nothing at every request.
            if (result.Rows == 0)
            {
                lease.Keep();
                return new ChargedResult(content, result, null, 0);
            }
            // Whose rows: the result's own per device and epoch when the view's device and time were carried along, else
            // each device's rows in the slice — never a device column the query made itself (it could name one owner for all).
            var shares = result.Delivered ?? sandbox.CountShares(table.Name, lake.EpochLength, options.QueryTimeout - Stopwatch.GetElapsedTime(started));
            lease.Keep();
            phases.End("attribute");
            var chargeId = ApiKeys.NewChargeId();
            long credits = 0;
            await accounts.AppendAsync(buyerId, (current, now) =>
            {
                var charged = Usable(current, grantId, now);
                if (charged.RowsLeft(now) < result.Rows)
                    throw new MarketRefusedException(StatusCodes.Status409Conflict, MarketReason.QuotaExhausted,
                        $"Other requests used the grant's quota while this query ran: {charged.RowsLeft(now)} rows are left and the result has {result.Rows}. Nothing was charged; narrow the query.");
                if (charged.BytesLeft(now) < result.Bytes) throw ResultPastByteQuota(charged, now, result.Bytes);
                var cost = credits = charged.CreditsFor(now, result.Rows, result.Bytes);
                var query = new QueryCharged(buyerId, grantId, chargeId, result.Rows, result.Bytes, cost, snapshot.Checkpoint, now);
                return SalesAttribution.Sale(grant.Dataset, grantId, chargeId, shares, result.Rows, cost) is { } sale ? [query, sale] : [query];
            }, cancellation, read);
            phases.End("charge");
            return new ChargedResult(content, result, chargeId, credits);
        }
        catch
        {
            await content.DisposeAsync();
            throw;
        }
    }

    public static SandboxLimits Limits(MarketplaceOptions options) => new()
    {
        MemoryLimitMegabytes = options.QueryMemoryLimitMegabytes,
        Threads = options.QueryThreads,
        Timeout = options.QueryTimeout,
    };

    /// <summary>The grant, if it may be read now: it exists, has not expired, and has rows (and bytes) left in its quota.</summary>
    public static Grant Usable(BuyerAccount account, string grantId, DateTimeOffset now)
    {
        var grant = account.FindGrant(grantId) ?? throw new MarketRefusedException(StatusCodes.Status404NotFound, MarketReason.UnknownGrant, $"The account has no grant '{grantId}' (one expired or used up leaves the account at the next purchase); GET /v1/account lists yours.");
        if (grant.ExpiresAt <= now) throw new MarketRefusedException(StatusCodes.Status403Forbidden, MarketReason.GrantExpired, $"The grant expired at {grant.ExpiresAt:O}; buy a new one.");
        if (grant.RowsLeft(now) == 0)
            throw new MarketRefusedException(StatusCodes.Status403Forbidden, MarketReason.QuotaExhausted,
                grant.Subscription && !grant.PaidRowsUsed ? $"The grant's {grant.RowQuota} rows for this month are used; more come on the 1st (UTC)." : $"The grant's {grant.RowQuota * grant.MonthsBought} rows are used; buy a new grant.");
        if (grant.BytesLeft(now) == 0) throw ByteQuotaExceeded(grant, "The grant's bytes are used");
        return grant;
    }

    /// <summary>The refusal of a delivery that would pass the grant's byte quota: what happened, then what to do.</summary>
    public static MarketRefusedException ByteQuotaExceeded(Grant grant, string what) =>
        new(StatusCodes.Status403Forbidden, MarketReason.ByteQuotaExceeded, grant.Subscription
            ? $"{what} (byte quota {grant.ByteQuota} a month). Select fewer rows or columns, ask for Parquet, wait for the 1st (UTC), or buy a grant with a larger byteQuotaMegabytes."
            : $"{what} (byte quota {grant.ByteQuota}). Select fewer rows or columns, ask for Parquet, or buy a grant with a larger byteQuotaMegabytes.");

    /// <summary>The refusal of a result (query, export) of <paramref name="bytes"/> bytes, more than the grant has left.</summary>
    public static MarketRefusedException ResultPastByteQuota(Grant grant, DateTimeOffset now, long bytes) =>
        ByteQuotaExceeded(grant, $"The result is {bytes} bytes and the grant has {grant.BytesLeft(now)} left; nothing of it was delivered or charged");

    /// <summary>The sandbox's view of a grant: its dataset's files, restricted to its rows; a make becomes its devices.</summary>
    public async Task<GrantedTable> TableAsync(Grant grant, LakeSnapshot snapshot, CancellationToken cancellation)
    {
        var dataset = MarketDatasets.Find(grant.Dataset)!;
        IReadOnlyCollection<string>? devices = grant.Devices;
        if (grant.Make is { } make)
        {
            var ofMake = await makes.OfAsync(dataset.Kind, make, cancellation);
            devices = devices is null ? ofMake : ofMake.Intersect(devices).ToList();
        }
        var box = grant.South is { } s ? new BoundingBox(s, grant.West!.Value, grant.North!.Value, grant.East!.Value) : null;
        return new GrantedTable(dataset.Name, dataset.Shape, snapshot.PathsOf(dataset.Name), new RowRestriction(grant.From, grant.Until, box, devices));
    }
}
