using System.Data.Common;
using Marten;
using Microsoft.Extensions.Hosting;
using Pipeline.Core.Events;
using Pipeline.Infra.Postgres;
using Weasel.Core;
using Weasel.Postgresql;

namespace Pipeline.Marketplace.Contributors;

/// <summary>
/// Partial indexes of the sales on mt_events by device, so a contributor's sales are summed from their devices' sales
/// alone rather than from a scan of every event (readings are most of them): a GIN index of the devices each
/// <see cref="SalesAttributed"/> names in its lines, and a b-tree by device and dataset of the sales first written one per
/// device (<see cref="DataSold"/>). Marten owns mt_events and offers no expression index on it, so the indexes are a
/// Weasel schema object of their own, and Marten is told to leave them alone (<see cref="EventStore.AreaEventIndexes"/>);
/// other events' inserts skip them.
/// </summary>
public sealed class SalesByDeviceIndex(string schema) : ISchemaObject
{
    public const string Name = "mt_events_data_sold_devices";
    public const string V1Name = "mt_events_data_sold_device";
    public static readonly string SalesAttributedType = EventNames.All[typeof(SalesAttributed)];
    public static readonly string DataSoldType = EventNames.All[typeof(DataSold)];

    /// <summary>The devices a <see cref="SalesAttributed"/> names, as a JSON array of strings: the indexed expression, which a query must repeat to use it.</summary>
    public const string DevicesOfSale = "jsonb_path_query_array(data, '$.lines[*].device')";

    public DbObjectName Identifier { get; } = new PostgresqlObjectName(schema, Name, SchemaUtils.IdentifierUsage.General);

    public void WriteCreateStatement(Migrator migrator, TextWriter writer)
    {
        writer.WriteLine($"CREATE INDEX IF NOT EXISTS {Name} ON {schema}.mt_events USING gin (({DevicesOfSale})) WHERE type = '{SalesAttributedType}';");
        writer.WriteLine($"CREATE INDEX IF NOT EXISTS {V1Name} ON {schema}.mt_events ((data ->> 'device'), (data ->> 'dataset')) WHERE type = '{DataSoldType}';");
    }

    public void WriteDropStatement(Migrator rules, TextWriter writer)
    {
        writer.WriteLine($"DROP INDEX IF EXISTS {schema}.{Name};");
        writer.WriteLine($"DROP INDEX IF EXISTS {schema}.{V1Name};");
    }

    public void ConfigureQueryCommand(Weasel.Core.DbCommandBuilder builder) =>
        builder.Append($"SELECT count(*) FROM pg_indexes WHERE schemaname = '{schema}' AND indexname IN ('{Name}', '{V1Name}');");

    public async Task<ISchemaObjectDelta> CreateDeltaAsync(DbDataReader reader, CancellationToken ct = default) =>
        new SchemaObjectDelta(this, await reader.ReadAsync(ct) && reader.GetInt64(0) == 2 ? SchemaPatchDifference.None : SchemaPatchDifference.Create);

    public IEnumerable<DbObjectName> AllNames() => [Identifier, new PostgresqlObjectName(schema, V1Name, SchemaUtils.IdentifierUsage.General)];

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
