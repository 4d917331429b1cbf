using System.Data.Common;
using Marten;
using Microsoft.Extensions.Hosting;
using Pipeline.Core.Events;
using Pipeline.Infra.Postgres;
using Weasel.Core;
using Weasel.Postgresql;

namespace Pipeline.Marketplace.Contributors;

/// <summary>
/// A partial index of the DataSold events on mt_events by device and dataset, so a contributor's sales are summed from
/// their devices' sales alone rather than from a scan of every event (readings are most of them). Marten owns mt_events
/// and offers no expression index on it, so the index is a Weasel schema object of its own; other events' inserts skip it.
/// </summary>
public sealed class SalesByDeviceIndex(string schema) : ISchemaObject
{
    public const string Name = "mt_events_data_sold_device";
    public static readonly string DataSoldType = EventNames.All[typeof(DataSold)];

    public DbObjectName Identifier { get; } = new PostgresqlObjectName(schema, Name, SchemaUtils.IdentifierUsage.General);

    public void WriteCreateStatement(Migrator migrator, TextWriter writer) =>
        writer.WriteLine($"CREATE INDEX IF NOT EXISTS {Name} ON {schema}.mt_events ((data ->> 'device'), (data ->> 'dataset')) WHERE type = '{DataSoldType}';");

    public void WriteDropStatement(Migrator rules, TextWriter writer) => writer.WriteLine($"DROP INDEX IF EXISTS {schema}.{Name};");

    public void ConfigureQueryCommand(Weasel.Core.DbCommandBuilder builder) =>
        builder.Append($"SELECT 1 FROM pg_indexes WHERE schemaname = '{schema}' AND indexname = '{Name}';");

    public async Task<ISchemaObjectDelta> CreateDeltaAsync(DbDataReader reader, CancellationToken ct = default) =>
        new SchemaObjectDelta(this, await reader.ReadAsync(ct) ? SchemaPatchDifference.None : SchemaPatchDifference.Create);

    public IEnumerable<DbObjectName> AllNames() => [Identifier];

    /// <summary>
    /// Applied when the host starts, after the store's own schema (registered later than it): as one of Marten's
    /// ExtendedSchemaObjects it would be created before mt_events, which Marten writes after every extended object.
    /// </summary>
    public sealed class AtStart(IDocumentStore store) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => store.ApplyAsync([new SalesByDeviceIndex(store.Schema())], cancellationToken);

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
