using Marten;
using Marten.Exceptions;
using Microsoft.Extensions.Logging;
using Npgsql;
using Pipeline.Core.Envelope;
using Pipeline.Core.Events;
using Pipeline.Infra.Postgres;

namespace Pipeline.Tests.Integration.Foundation;

[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class EventStoreTests(StackFixture fixture)
{
    private const string Device = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed";

    [Fact]
    public async Task AppendAndRead_StoresEventsUnderTheirWireNames()
    {
        await using var scope = await fixture.CreateEventStoreAsync("it_event_store_append");
        var store = scope.Store;
        var registered = new DeviceRegistered(Device, "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266", DeviceKind.Vehicle,
            new Dictionary<string, string> { ["make"] = "Volvo" }, "message", "0x01", "0x02", DateTimeOffset.UtcNow);
        var accepted = new ReadingAccepted("0xabc", 1, DateTimeOffset.UtcNow.AddSeconds(-1), DateTimeOffset.UtcNow,
            new Dictionary<string, double> { ["Vehicle.Speed"] = 54.2 }, 2, 17);

        await using (var session = store.LightweightSession())
        {
            session.Events.Append(Device, registered, accepted);
            await session.SaveChangesAsync();
        }

        await using (var query = store.QuerySession())
        {
            var events = await query.Events.FetchStreamAsync(Device);
            Assert.Equal(2, events.Count);
            var stored = Assert.IsType<DeviceRegistered>(events[0].Data);
            Assert.Equal((registered.Device, registered.Owner, registered.Kind, registered.RegisteredAt), (stored.Device, stored.Owner, stored.Kind, stored.RegisteredAt));
            Assert.Equal("Volvo", stored.Metadata["make"]);
            var read = Assert.IsType<ReadingAccepted>(events[1].Data);
            Assert.Equal(54.2, read.Signals["Vehicle.Speed"]);
            Assert.Equal((2, 17L), (read.Partition, read.Offset));
        }

        await using var connection = new NpgsqlConnection(fixture.PostgresConnectionString);
        await connection.OpenAsync();
        await using var types = new NpgsqlCommand("SELECT type FROM it_event_store_append.mt_events ORDER BY seq_id", connection);
        await using var reader = await types.ExecuteReaderAsync();
        var names = new List<string>();
        while (await reader.ReadAsync()) names.Add(reader.GetString(0));
        Assert.Equal(["device_registered.v1", "reading_accepted.v1"], names);
    }

    [Fact]
    public async Task Append_LosingTheRaceForTheStreamsVersion_IsThrownToTheCaller_NotLoggedAsAFailure_WhileOtherFailuresAre()
    {
        var log = new RecordedLog();
        await using var scope = await fixture.CreateEventStoreAsync("it_event_store_log", log);
        var store = scope.Store;
        const string buyer = "buyer_race";
        await using (var first = store.LightweightSession())
        {
            first.Events.StartStream(buyer, new CreditsAdded(buyer, 10, "opening", DateTimeOffset.UtcNow));
            await first.SaveChangesAsync();
        }
        // Two writers decided on version 1 (two charges at once, or a replica's copy behind a payment): the second loses.
        await using (var winner = store.LightweightSession())
        {
            winner.Events.Append(buyer, 2, new CreditsAdded(buyer, 1, "first", DateTimeOffset.UtcNow));
            await winner.SaveChangesAsync();
        }
        await using (var loser = store.LightweightSession())
        {
            loser.Events.Append(buyer, 2, new CreditsAdded(buyer, 1, "second", DateTimeOffset.UtcNow));
            var lost = await Assert.ThrowsAnyAsync<Exception>(() => loser.SaveChangesAsync());
            Assert.True(MartenLog.IsVersionConflict(lost), lost.ToString());
        }
        Assert.DoesNotContain(log.Entries, e => e.Level >= LogLevel.Error);

        // Any other failure is still logged as Marten's, with its statement.
        await using (var broken = store.LightweightSession())
        {
            broken.QueueSqlCommand("SELECT 1 / 0");
            await Assert.ThrowsAnyAsync<Exception>(() => broken.SaveChangesAsync());
        }
        Assert.Contains(log.Entries, e => e.Level == LogLevel.Error && e.Category == typeof(IDocumentStore).FullName && e.Message.StartsWith("Marten failed executing", StringComparison.Ordinal) && e.Message.Contains("SELECT 1 / 0"));
        Assert.False(MartenLog.IsVersionConflict(new InvalidOperationException("another failure")));
    }

    /// <summary>What the store logs, every category and level.</summary>
    private sealed class RecordedLog : ILoggerProvider
    {
        public System.Collections.Concurrent.ConcurrentQueue<(string Category, LogLevel Level, string Message)> Entries { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Recorder(this, categoryName);

        public void Dispose()
        {
        }

        private sealed class Recorder(RecordedLog log, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                log.Entries.Enqueue((category, logLevel, formatter(state, exception)));
        }
    }

    [Fact]
    public async Task Append_WithAnEventIdAlreadyStored_IsRefusedByTheStore()
    {
        await using var scope = await fixture.CreateEventStoreAsync("it_event_store_unique");
        var store = scope.Store;
        var id = Guid.NewGuid();
        await AppendWithId(store, id);
        var error = await Assert.ThrowsAsync<MartenCommandException>(() => AppendWithId(store, id));
        Assert.Equal(PostgresErrorCodes.UniqueViolation, Assert.IsType<PostgresException>(error.InnerException).SqlState);

        await using var query = store.QuerySession();
        Assert.Single(await query.Events.FetchStreamAsync(Device));
    }

    private static async Task AppendWithId(IDocumentStore store, Guid id)
    {
        await using var session = store.LightweightSession();
        var e = session.Events.BuildEvent(new ReadingAccepted("0xabc", 1, DateTimeOffset.UtcNow, DateTimeOffset.UtcNow, new Dictionary<string, double>(), 0, 0));
        e.Id = id;
        session.Events.Append(Device, e);
        await session.SaveChangesAsync();
    }
}
