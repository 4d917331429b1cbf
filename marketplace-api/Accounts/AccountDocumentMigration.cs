using System.Text.Json;
using Marten;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Pipeline.Core.Events;
using Pipeline.Infra.Postgres;

namespace Pipeline.Marketplace.Accounts;

/// <summary>
/// Moves accounts written before their keys and payments had documents of their own (issue 13) to the new shape: each
/// such account's <see cref="BuyerKey"/> and <see cref="CountedPayment"/> documents are made from its events, and its
/// document loses the key hashes and the payment list and gains its live key ids. An account is of the old shape when
/// no key document names it (every buyer gets a key when created), so each start of a host with the buyer documents
/// runs this, before it serves, and finds nothing to do after the first.
/// </summary>
public sealed class AccountDocumentMigration(IDocumentStore store, ILogger<AccountDocumentMigration> logger) : IHostedService
{
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var schema = store.Schema();
        IReadOnlyList<string> old;
        await using (var session = store.QuerySession())
            old = await session.AdvancedSql.QueryAsync<string>(
                $"SELECT a.id FROM {schema}.mt_doc_buyeraccount a WHERE NOT EXISTS (SELECT 1 FROM {schema}.mt_doc_buyerkey k WHERE k.data ->> 'buyerId' = a.id)", cancellationToken);
        foreach (var buyerId in old) await MoveAsync(schema, buyerId, cancellationToken);
        if (old.Count > 0) logger.LogInformation("Moved the keys and payments of {Accounts} buyer accounts into documents of their own", old.Count);
    }

    private async Task MoveAsync(string schema, string buyerId, CancellationToken cancellation)
    {
        await using var session = store.LightweightSession();
        var keys = new Dictionary<string, BuyerKey>(StringComparer.Ordinal);
        var payments = new Dictionary<string, CountedPayment>(StringComparer.Ordinal);
        var projection = new BuyerKeyProjection();
        foreach (var e in await session.Events.FetchStreamAsync(buyerId, token: cancellation))
        {
            switch (e.Data)
            {
                case ApiKeyIssued issued:
                    keys[issued.KeyId] = projection.Create(issued);
                    break;
                case ApiKeyRevoked revoked when keys.TryGetValue(revoked.KeyId, out var key):
                    projection.Apply(revoked, key);
                    break;
                case PaymentReceived paid:
                    payments.TryAdd(CountedPayment.Of(paid).Id, CountedPayment.Of(paid));
                    break;
            }
        }
        session.Store(keys.Values.ToArray());
        if (payments.Count > 0) session.Store(payments.Values.ToArray());
        var live = JsonSerializer.Serialize(keys.Values.Where(k => k.RevokedAt is null).Select(k => k.Id));
        // In place, so that nothing else of the account (its balance, its grants' use) can be lost to the move.
        session.QueueSqlCommand($"UPDATE {schema}.mt_doc_buyeraccount SET data = (data - 'keys' - 'payments') || jsonb_build_object('liveKeys', ?::jsonb) WHERE id = ?", live, buyerId);
        await session.SaveChangesAsync(cancellation);
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
