using Marten.Services;
using Npgsql;
using Pipeline.Cli.Hosting;
using Pipeline.Core.Events;
using Pipeline.Tests.Integration.Ingest;

namespace Pipeline.Tests.Integration.Projections;

/// <summary>
/// Issue 10, item 7: the lake waits only for the transactions that can still write events below its ceiling — not for
/// every transaction on the server — and still never reads past a sequence number that has yet to commit.
/// </summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class LakeFreshnessTests(StackFixture fixture)
{
    [Fact]
    public async Task TransactionsHeldOpenElsewhereOnTheServer_DoNotHoldTheLakeBack_Issue10()
    {
        var lake = Directory.CreateTempSubdirectory("depin-lake-").FullName;
        try
        {
            await using var host = await TestHost.StartAsync(fixture, Roles.All, new Dictionary<string, string?> { ["Lake:Directory"] = lake }, schema: "it_lake_freshness");
            var device = new TestDevice("fresh");
            await Registration.RegisterAsync(host, device.Key);

            // Transactions holding an xid: one in another database of the same server (a report, a migration), one in
            // this database that writes no event.
            var otherDatabase = await CreateDatabaseAsync(host, "depin_lake_freshness_other");
            await using var elsewhere = await HoldTransactionAsync(otherDatabase);
            await using var alongside = await HoldTransactionAsync(host.PostgresConnectionString);

            var reading = device.Next();
            await HttpIngestTests.PostAsync(host, reading.Envelope, "application/json");
            await Streams.PipelineProbe.WaitForProcessorsAsync(host, host.RawTopic);
            // Well within the 30 s the lake gives a transaction before starting over.
            await LakeProbe.WaitForLakeAsync(host, timeout: TimeSpan.FromSeconds(15));

            using var duck = await LakeProbe.OpenAsync(host, lake);
            Assert.Equal(1L, LakeProbe.Query(duck, $"SELECT count(*) AS n FROM vehicle_signals WHERE reading_id = '{reading.Id}'").Single()["n"]);
        }
        finally
        {
            Directory.Delete(lake, recursive: true);
        }
    }

    [Fact]
    public async Task Ceiling_WaitsForATransactionHoldingASequenceNumber_ThenReadsItsEventInOrder()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Api, schema: "it_lake_ceiling");
        // One transaction takes a sequence number and stays open; a later one commits a higher number.
        await using var held = new NpgsqlConnection(host.PostgresConnectionString);
        await held.OpenAsync();
        await using var transaction = await held.BeginTransactionAsync();
        await AppendAsync(host, "0x00000000000000000000000000000000000000a1", seq: 1, transaction);
        await AppendAsync(host, "0x00000000000000000000000000000000000000a2", seq: 2, transaction: null);

        var feed = host.Lake.Feed();
        var read = feed.ReadAsync(after: 0, max: 100, until: null, CancellationToken.None);
        await WaitUntilTheFeedWaitsAsync(host);
        Assert.False(read.IsCompleted, "The feed read past a sequence number whose transaction is still open.");

        await transaction.CommitAsync();
        var (events, through) = await read;
        Assert.Equal([1L, 2L], events.Select(e => ((ReadingAccepted)e.Data).Seq));
        Assert.Equal(events[^1].Sequence, through);
        Assert.True(events[0].Sequence < events[1].Sequence);
    }

    private static async Task AppendAsync(TestHost host, string device, long seq, NpgsqlTransaction? transaction)
    {
        await using var session = transaction is null ? host.Store.LightweightSession() : host.Store.LightweightSession(SessionOptions.ForTransaction(transaction));
        session.Events.Append(device, new ReadingAccepted($"0x{seq:x64}", seq, DateTimeOffset.UtcNow, DateTimeOffset.UtcNow, new Dictionary<string, double> { ["Vehicle.Speed"] = 50 }, 0, seq));
        await session.SaveChangesAsync();
    }

    /// <summary>Until the feed's session has asked whether the transactions holding sequence numbers are still open.</summary>
    private static async Task WaitUntilTheFeedWaitsAsync(TestHost host)
    {
        var deadline = DateTime.UtcNow.AddSeconds(20);
        await using var connection = new NpgsqlConnection(host.PostgresConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND query LIKE '%virtualtransaction = ANY%'", connection)
        {
            Parameters = { new() { Value = $"depin-lake-feed:{host.Schema}" } },
        };
        while ((long)(await command.ExecuteScalarAsync())! == 0)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("The feed never waited for the open transaction.");
            await Task.Delay(20);
        }
    }

    private static async Task<string> CreateDatabaseAsync(TestHost host, string name)
    {
        var admin = new NpgsqlConnectionStringBuilder(host.PostgresConnectionString) { Database = "postgres", Pooling = false };
        await using var connection = new NpgsqlConnection(admin.ConnectionString);
        await connection.OpenAsync();
        await using var exists = new NpgsqlCommand("SELECT count(*) FROM pg_database WHERE datname = $1", connection) { Parameters = { new() { Value = name } } };
        if ((long)(await exists.ExecuteScalarAsync())! == 0)
        {
            await using var create = new NpgsqlCommand($"CREATE DATABASE {name}", connection);
            await create.ExecuteNonQueryAsync();
        }
        return new NpgsqlConnectionStringBuilder(host.PostgresConnectionString) { Database = name }.ConnectionString;
    }

    /// <summary>A transaction with an xid (as any write has), open until disposed: a session of its own, ended on dispose.</summary>
    private static async Task<NpgsqlConnection> HoldTransactionAsync(string connectionString)
    {
        var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false }.ConnectionString);
        await connection.OpenAsync();
        await using var begin = new NpgsqlCommand("BEGIN; SELECT pg_current_xact_id();", connection);
        await begin.ExecuteNonQueryAsync();
        return connection;
    }
}
