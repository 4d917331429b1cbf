using Npgsql;
using Pipeline.Cli.Hosting;
using Pipeline.Streams.Processing;
using V = Pipeline.Core.Signals.SignalCatalog.Vehicle;

namespace Pipeline.Tests.Integration.Streams;

/// <summary>
/// Issue 16: the events' append leaves out mt_events' foreign key check on its stream where the role may set
/// session_replication_role, for that statement alone — the statement proves the stream itself. Ordinary triggers fire
/// exactly where foreign key checks do, so a trigger on mt_events shows whether the append left them out, and one on
/// device_positions (written after the append, in the same transaction) that they are back for the rest.
/// </summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class StreamKeyCheckTests(StackFixture fixture)
{
    [Fact]
    public async Task TheAppendLeavesOutTheStreamKeyCheck_AndStillRefusesReadingsOfAMissingOrArchivedStream_Issue16()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Api | Roles.Streams, schema: "it_stream_key");
        var (honest, missing, archived) = (new TestDevice("key-honest"), new TestDevice("key-missing"), new TestDevice("key-archived"));
        foreach (var device in new[] { honest, missing, archived }) await Registration.RegisterAsync(host, device.Key);
        await NoteTriggersAsync(host);
        // What the foreign key would have refused: a stream that is gone, and one that is archived (Marten's append refuses it too).
        await host.ExecuteAsync($"DELETE FROM {host.Schema}.mt_streams WHERE id = '{missing.Address}'");
        await host.ExecuteAsync($"UPDATE {host.Schema}.mt_streams SET is_archived = true WHERE id = '{archived.Address}'");

        var readings = new[] { Located(honest), Located(missing), Located(honest), Located(archived) };
        // One partition: they arrive together and are decided as one batch, which PostgreSQL refuses until halved.
        ProcessorDedupTests.Produce(host, honest.Address, 0, readings.Select(r => r.Envelope));
        await PipelineProbe.WaitForProcessorsAsync(host, host.RawTopic, timeout: TimeSpan.FromSeconds(60));

        Assert.True(host.Create<ProcessingStore>().AppendsSkipStreamKeyCheck, "The fixture connects as a superuser, who may set session_replication_role.");
        Assert.Equal(new[] { readings[0].Id, readings[2].Id }.Order(), (await PipelineProbe.AcceptedAsync(host)).Select(a => a.ReadingId).Order());
        var dead = PipelineProbe.DeadLetters(host);
        Assert.Equal(new[] { readings[1].Id, readings[3].Id }.Order(), dead.Select(d => d.ReadingId!).Order());
        // The event's version comes from its stream's row: no row to update, no version, and the row is refused.
        Assert.All(dead, d => Assert.Equal("unstorable", d.Reason));
        Assert.All(dead, d => Assert.Contains("SQLSTATE 23502", d.Detail, StringComparison.Ordinal));
        var fired = await FiredAsync(host);
        Assert.Equal(0, fired.GetValueOrDefault("mt_events"));
        Assert.True(fired.GetValueOrDefault("device_positions") > 0, "The honest device's fix was written with its triggers.");
    }

    [Fact]
    public async Task ARoleThatMayNotSetReplicationRole_KeepsTheStreamKeyCheck_AndStoresEveryReading_Issue16()
    {
        // A role as a managed PostgreSQL hands out: may create a schema in the database, nothing more. The cluster is the
        // repository's own (`depin up` uses it too), so the role and its password do not outlive the test.
        const string role = "it_plain_role";
        var password = Guid.NewGuid().ToString("N");
        var database = new NpgsqlConnectionStringBuilder(fixture.PostgresConnectionString).Database;
        await AsSuperuserAsync($"""
            DROP SCHEMA IF EXISTS it_stream_key_plain CASCADE;
            DO $$ BEGIN IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN DROP OWNED BY {role}; DROP ROLE {role}; END IF; END $$;
            CREATE ROLE {role} LOGIN PASSWORD '{password}';
            GRANT CREATE ON DATABASE "{database}" TO {role};
            """);
        try
        {
            var plain = new NpgsqlConnectionStringBuilder(fixture.PostgresConnectionString) { Username = role, Password = password };
            await using var host = await TestHost.StartAsync(fixture, Roles.Api | Roles.Streams, new Dictionary<string, string?> { ["Postgres:ConnectionString"] = plain.ConnectionString }, schema: "it_stream_key_plain");
            var device = new TestDevice("key-plain");
            await Registration.RegisterAsync(host, device.Key);
            await NoteTriggersAsync(host);

            var readings = new[] { Located(device), Located(device), Located(device) };
            ProcessorDedupTests.Produce(host, device.Address, 0, readings.Select(r => r.Envelope));
            await PipelineProbe.WaitForProcessorsAsync(host, host.RawTopic, timeout: TimeSpan.FromSeconds(60));

            Assert.False(host.Create<ProcessingStore>().AppendsSkipStreamKeyCheck);
            Assert.Equal(readings.Select(r => r.Id).Order(), (await PipelineProbe.AcceptedAsync(host)).Select(a => a.ReadingId).Order());
            Assert.Equal(readings.Length, (await FiredAsync(host)).GetValueOrDefault("mt_events"));
        }
        finally
        {
            // The host has closed its connections; the role's schema and grant go with it.
            await AsSuperuserAsync($"DROP SCHEMA IF EXISTS it_stream_key_plain CASCADE; DROP OWNED BY {role}; DROP ROLE {role};");
        }

        async Task AsSuperuserAsync(string sql)
        {
            await using var connection = new NpgsqlConnection(fixture.PostgresConnectionString);
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand(sql, connection);
            await command.ExecuteNonQueryAsync();
        }
    }

    private static (string Id, byte[] Envelope, string Payload) Located(TestDevice device) =>
        device.Next([new(V.Latitude, 52.37), new(V.Longitude, 4.89), new(V.Speed, 50)]);

    /// <summary>A trigger on mt_events and one on device_positions that note each row they fire for, as the superuser.</summary>
    private static Task NoteTriggersAsync(TestHost host) => host.ExecuteAsync($"""
        CREATE TABLE {host.Schema}.fired (table_name text NOT NULL);
        GRANT INSERT, SELECT ON {host.Schema}.fired TO PUBLIC;
        CREATE FUNCTION {host.Schema}.note_fired() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN INSERT INTO {host.Schema}.fired VALUES (TG_TABLE_NAME); RETURN NULL; END $$;
        CREATE TRIGGER note_events AFTER INSERT ON {host.Schema}.mt_events FOR EACH ROW EXECUTE FUNCTION {host.Schema}.note_fired();
        CREATE TRIGGER note_positions AFTER INSERT OR UPDATE ON {host.Schema}.device_positions FOR EACH ROW EXECUTE FUNCTION {host.Schema}.note_fired();
        """);

    private static async Task<Dictionary<string, int>> FiredAsync(TestHost host)
    {
        await using var connection = new NpgsqlConnection(host.PostgresConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"SELECT table_name, count(*)::int FROM {host.Schema}.fired GROUP BY table_name", connection);
        await using var reader = await command.ExecuteReaderAsync();
        var fired = new Dictionary<string, int>();
        while (await reader.ReadAsync()) fired[reader.GetString(0)] = reader.GetInt32(1);
        return fired;
    }
}
