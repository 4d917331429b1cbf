using Marten;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Npgsql;
using Pipeline.Infra.Postgres;
using Pipeline.Projections;
using Pipeline.Projections.Lake;
using Pipeline.Registry;
using Pipeline.Streams;
using Pipeline.Streams.Processing;
using Weasel.Core;

namespace Pipeline.Tests.Integration.Foundation;

/// <summary>
/// The processors' and the lake's tables are Marten's to create and migrate (extended schema objects): a database made
/// by the hand-written DDL they replaced is taken over as it is, and processes starting together do not race.
/// </summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class ProjectTablesSchemaTests(StackFixture fixture)
{
    [Fact]
    public async Task TablesCreatedByTheFormerHandWrittenDdl_AreTakenOverByMarten_WithoutLosingARow()
    {
        const string schema = "it_schema_former_ddl";
        await fixture.DropSchemaAsync(schema);
        await ExecuteAsync($"CREATE SCHEMA {schema};" + FormerDdl(schema) + $"""
            INSERT INTO {schema}.processed_readings VALUES ('\x01', 'd', 1, true), ('\x02', 'd', 1, false), ('\x03', 'd', 2, false);
            INSERT INTO {schema}.device_positions VALUES ('d', 52.5, 13.4, '2026-01-01T00:00:00Z');
            INSERT INTO {schema}.consumer_offsets VALUES ('b', 'g', 't', 0, 42);
            INSERT INTO {schema}.dead_letters (broker, source_topic, source_partition, source_offset, reason, detail, value, received_at) VALUES ('b', 't', 0, 7, 'bad_encoding', 'x', '\x00', now());
            INSERT INTO {schema}.dead_letter_checkpoints VALUES ('b', 't', 0, 7);
            INSERT INTO {schema}.lake_checkpoints VALUES ('live', 99);
            INSERT INTO {schema}.lake_files VALUES ('live', 'p', 'vehicle', '2026-01-01', 1, 99, 10, 'aa');
            """);

        // The definitions match what the DDL made: Marten finds nothing to alter (no key or index rebuilt on a big table).
        // The lake's tables have since gained the columns of versioned file sets (as_of): added, nothing rebuilt; the
        // processors' accepted seqs have left processed_readings for a table of their own (issue 16).
        await using (var connection = new NpgsqlConnection(fixture.PostgresConnectionString))
        {
            await connection.OpenAsync();
            Assert.Equal(SchemaPatchDifference.None, (await SchemaMigration.DetermineAsync(connection, ProcessingTables.For(schema).Where(t => t.Identifier.Name != "accepted_seqs").ToArray<ISchemaObject>())).Difference);
            Assert.Equal(SchemaPatchDifference.Update, (await SchemaMigration.DetermineAsync(connection, LakeTables.For(schema).ToArray<ISchemaObject>())).Difference);
        }

        await using var services = Compose(schema);
        var store = services.GetRequiredService<IDocumentStore>();
        await store.ApplySchemaAsync();
        await services.GetRequiredService<ProcessingStore>().EnsureSchemaAsync(CancellationToken.None);

        Assert.Equal(SchemaPatchDifference.None, (await store.Storage.Database.CreateMigrationAsync()).Difference);
        // The serial keeps counting where it was: the relay's order survives.
        await ExecuteAsync($"INSERT INTO {schema}.dead_letters (broker, source_topic, source_partition, source_offset, reason, detail, value, received_at) VALUES ('b', 't', 0, 8, 'bad_encoding', 'x', '\\x00', now())");
        Assert.Equal(
            "d/1/\\x01|processed_readings gone|1|1|1,2|1|1|1",
            await QueryAsync($"""
                SELECT concat_ws('|',
                    (SELECT string_agg(device || '/' || seq || '/' || reading_id::text, ',') FROM {schema}.accepted_seqs),
                    (SELECT coalesce(to_regclass('{schema}.processed_readings')::text, 'processed_readings gone')),
                    (SELECT count(*) FROM {schema}.device_positions WHERE latitude = 52.5),
                    (SELECT count(*) FROM {schema}.consumer_offsets WHERE next_offset = 42),
                    (SELECT string_agg(id::text, ',' ORDER BY id) FROM {schema}.dead_letters WHERE NOT written),
                    (SELECT count(*) FROM {schema}.dead_letter_checkpoints WHERE verified_offset = 7),
                    (SELECT count(*) FROM {schema}.lake_checkpoints WHERE last_seq = 99),
                    (SELECT count(*) FROM {schema}.lake_files WHERE rows = 10))
                """));
    }

    [Fact]
    public async Task ProjectTables_AppliedByMarten_KeepTheirKeysAndPartialIndexes()
    {
        const string schema = "it_schema_indexes";
        await fixture.DropSchemaAsync(schema);
        await using var services = Compose(schema);
        await services.GetRequiredService<IDocumentStore>().ApplySchemaAsync();

        // A second accepted reading for a device's seq is refused.
        await ExecuteAsync($"INSERT INTO {schema}.accepted_seqs VALUES ('d', 1, '\\x01'), ('e', 1, '\\x02')");
        var duplicate = await Assert.ThrowsAsync<PostgresException>(() => ExecuteAsync($"INSERT INTO {schema}.accepted_seqs VALUES ('d', 1, '\\x03')"));
        Assert.Equal(PostgresErrorCodes.UniqueViolation, duplicate.SqlState);
        Assert.Equal(
            "dead_letters_pending: CREATE INDEX dead_letters_pending ON it_schema_indexes.dead_letters USING btree (id) WHERE (NOT written)",
            await QueryAsync($"SELECT indexname || ': ' || indexdef FROM pg_indexes WHERE schemaname = '{schema}' AND indexname = 'dead_letters_pending'"));
    }

    [Fact]
    public async Task TwoProcessesStartingTogether_OnAnEmptySchema_BothStart()
    {
        const string schema = "it_schema_race";
        await fixture.DropSchemaAsync(schema);
        using var first = Host(schema);
        using var second = Host(schema);

        // Each host applies the whole schema at start, as `depin up` and `depin streams` do.
        await Task.WhenAll(first.StartAsync(), second.StartAsync());

        Assert.Equal(SchemaPatchDifference.None, (await first.Services.GetRequiredService<IDocumentStore>().Storage.Database.CreateMigrationAsync()).Difference);
        await Task.WhenAll(first.StopAsync(), second.StopAsync());
    }

    [Fact]
    public async Task HostStarting_WhileAnotherProcessAppliesTheSchema_WaitsForItInsteadOfFailing()
    {
        const string schema = "it_schema_wait";
        await fixture.DropSchemaAsync(schema);
        using var host = Host(schema);
        var lockId = ((StoreOptions)host.Services.GetRequiredService<IDocumentStore>().Options).ApplyChangesLockId;

        // Another process holds Marten's apply lock (as while it migrates a large schema).
        await using var other = new NpgsqlConnection(fixture.PostgresConnectionString);
        await other.OpenAsync();
        await using (var take = new NpgsqlCommand("SELECT pg_advisory_lock($1)", other) { Parameters = { new() { Value = lockId } } })
            await take.ExecuteNonQueryAsync();
        var starting = host.StartAsync();
        await WaitUntilAsync(async () => starting.IsCompleted || await QueryAsync($"SELECT count(*)::text FROM pg_locks WHERE locktype = 'advisory' AND objid = {lockId} AND NOT granted") == "1");
        Assert.False(starting.IsCompleted, "The host should wait for the lock, not give up or go ahead.");
        await using (var release = new NpgsqlCommand("SELECT pg_advisory_unlock($1)", other) { Parameters = { new() { Value = lockId } } })
            await release.ExecuteNonQueryAsync();

        await starting;
        Assert.Equal(SchemaPatchDifference.None, (await host.Services.GetRequiredService<IDocumentStore>().Storage.Database.CreateMigrationAsync()).Difference);
        await host.StopAsync();
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (!await condition()) await Task.Delay(20, timeout.Token);
    }

    private IConfiguration Configuration(string schema) =>
        new ConfigurationBuilder().AddConfiguration(fixture.Settings).AddInMemoryCollection([new("EventStore:Schema", schema)]).Build();

    private ServiceProvider Compose(string schema) =>
        new ServiceCollection().AddLogging().AddEventStore(Configuration(schema)).AddRegistryDocuments().AddProcessingStore().AddLakeStore().BuildServiceProvider();

    private IHost Host(string schema)
    {
        var builder = Microsoft.Extensions.Hosting.Host.CreateEmptyApplicationBuilder(new());
        builder.Services.AddLogging().AddEventStore(Configuration(schema)).AddRegistryDocuments().AddProcessingStore().AddLakeStore();
        return builder.Build();
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(fixture.PostgresConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    private async Task<string?> QueryAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(fixture.PostgresConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        return (string?)await command.ExecuteScalarAsync();
    }

    /// <summary>The DDL the processors and the lake ran by hand until Marten took their tables over, as databases carry it.</summary>
    private static string FormerDdl(string schema) => $"""
        CREATE TABLE IF NOT EXISTS {schema}.processed_readings (
            reading_id bytea PRIMARY KEY,
            device text NOT NULL,
            seq bigint NOT NULL,
            accepted boolean NOT NULL);
        CREATE UNIQUE INDEX IF NOT EXISTS processed_readings_accepted_seq ON {schema}.processed_readings (device, seq) WHERE accepted;
        CREATE TABLE IF NOT EXISTS {schema}.device_positions (
            device text PRIMARY KEY,
            latitude double precision NOT NULL,
            longitude double precision NOT NULL,
            device_time timestamptz NOT NULL);
        CREATE TABLE IF NOT EXISTS {schema}.consumer_offsets (
            broker text NOT NULL,
            group_id text NOT NULL,
            topic text NOT NULL,
            partition int NOT NULL,
            next_offset bigint NOT NULL,
            PRIMARY KEY (broker, group_id, topic, partition));
        CREATE TABLE IF NOT EXISTS {schema}.dead_letters (
            id bigserial UNIQUE,
            broker text NOT NULL,
            source_topic text NOT NULL,
            source_partition int NOT NULL,
            source_offset bigint NOT NULL,
            device text,
            reason text NOT NULL,
            detail text NOT NULL,
            value bytea NOT NULL,
            received_at timestamptz NOT NULL,
            written boolean NOT NULL DEFAULT false,
            PRIMARY KEY (broker, source_topic, source_partition, source_offset));
        CREATE INDEX IF NOT EXISTS dead_letters_pending ON {schema}.dead_letters (id) WHERE NOT written;
        CREATE TABLE IF NOT EXISTS {schema}.dead_letter_checkpoints (
            broker text NOT NULL,
            topic text NOT NULL,
            partition int NOT NULL,
            verified_offset bigint NOT NULL,
            PRIMARY KEY (broker, topic, partition));
        CREATE TABLE IF NOT EXISTS {schema}.lake_checkpoints (lake text PRIMARY KEY, last_seq bigint NOT NULL);
        CREATE TABLE IF NOT EXISTS {schema}.lake_files (
            lake text NOT NULL,
            path text NOT NULL,
            dataset text NOT NULL,
            date date NOT NULL,
            first_seq bigint NOT NULL,
            last_seq bigint NOT NULL,
            rows int NOT NULL,
            sha256 text NOT NULL,
            PRIMARY KEY (lake, path));
        """;
}
