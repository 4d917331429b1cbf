using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Npgsql;
using Pipeline.Cli.Hosting;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Registry;
using Pipeline.Tests.Integration.Ingest;
using Pipeline.Tests.Integration.Streams;

namespace Pipeline.Tests.Integration.Registry;

/// <summary>
/// Issue 10, item 5: a registration counts at once everywhere. Device directories hear of registrations through
/// PostgreSQL LISTEN/NOTIFY, so a remembered miss never refuses a device that has registered since.
/// </summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class DeviceDirectoryTests(StackFixture fixture)
{
    private const string Schema = "it_directory";

    [Fact]
    public async Task RememberedMiss_ThenRegistration_TheNextLookupFindsTheDeviceAtOnce_Issue10()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Api, schema: Schema);
        await using var directory = await StartAsync(host);
        var device = EthKey.Generate();

        Assert.Equal([null], await directory.LookupAsync([device.Address], CancellationToken.None));
        Assert.Equal(1, directory.RememberedMisses);
        Assert.Equal([null], await directory.LookupAsync([device.Address], CancellationToken.None));

        await Registration.RegisterAsync(host, device);
        Assert.Equal([DeviceKind.Vehicle], await directory.LookupAsync([device.Address], CancellationToken.None));
        Assert.Equal(0, directory.RememberedMisses);
    }

    [Fact]
    public async Task DirectoryLosingItsConnection_ReconnectsAndLoadsEveryDevice_ForNotificationsWereLostMeanwhile_Issue10()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Api, schema: Schema);
        await Registration.RegisterAsync(host, EthKey.Generate());
        await using var directory = await StartAsync(host);
        Assert.Equal(1, directory.Count);
        var device = EthKey.Generate();
        Assert.Equal([null], await directory.LookupAsync([device.Address], CancellationToken.None));

        // Cut the listening session and register while the directory reconnects (it pauses a second first).
        var listener = await ListenerAsync(host);
        await host.ExecuteAsync($"SELECT pg_terminate_backend({listener})");
        await Registration.RegisterAsync(host, device, DeviceKind.Weather);

        // Without a single lookup: the reconnected directory loaded everything, and trusts no miss from before.
        await WaitAsync(() => directory.Listening && directory.Count == 2, "the directory to reconnect and hold both devices");
        Assert.NotEqual(listener, await ListenerAsync(host));
        Assert.Equal(0, directory.RememberedMisses);
        Assert.Equal([DeviceKind.Weather], await directory.LookupAsync([device.Address], CancellationToken.None));
    }

    [Fact]
    public async Task DeviceRefusedAsUnknown_ThenRegistered_ThenSendingAtOnce_IsAccepted_Issue10()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Api | Roles.Ingest | Roles.Streams, schema: Schema);
        var device = new TestDevice("registers-late");
        var early = device.Next();
        await HttpIngestTests.PostAsync(host, early.Envelope, "application/json");
        await PipelineProbe.WaitForProcessorsAsync(host, host.RawTopic);
        Assert.Equal([(early.Id, "unknown_device")], PipelineProbe.DeadLetters(host).Select(d => (d.ReadingId, d.Reason)));
        Assert.Equal(1, host.App.Services.GetRequiredService<DeviceDirectory>().RememberedMisses);

        await Registration.RegisterAsync(host, device.Key);
        var late = device.Next();
        await HttpIngestTests.PostAsync(host, late.Envelope, "application/json");
        await PipelineProbe.WaitForProcessorsAsync(host, host.RawTopic);
        Assert.Equal([late.Id], (await PipelineProbe.AcceptedAsync(host)).Select(a => a.ReadingId));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Directory_StoppedWhileLoadingOrListening_EndsQuietly_WithoutAnError_Issue16(bool listening)
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Api, schema: Schema);
        await Registration.RegisterAsync(host, EthKey.Generate());
        var logged = new LoggedLevels();
        var directory = ActivatorUtilities.CreateInstance<DeviceDirectory>(host.App.Services, logged);
        await directory.StartAsync(CancellationToken.None);
        if (listening) await WaitAsync(() => directory.Listening, "the directory to listen");

        await directory.StopAsync(CancellationToken.None);
        directory.Dispose();
        // A normal shutdown: the loop ended without a fault the host would log as an error, and said nothing above information.
        Assert.False(directory.ExecuteTask!.IsFaulted, directory.ExecuteTask.Exception?.ToString());
        Assert.Empty(logged.Above(LogLevel.Information));
    }

    /// <summary>The levels and messages a logger was given.</summary>
    private sealed class LoggedLevels : ILogger<DeviceDirectory>
    {
        private readonly System.Collections.Concurrent.ConcurrentQueue<(LogLevel Level, string Message)> _entries = new();

        public IEnumerable<string> Above(LogLevel level) => _entries.Where(e => e.Level > level).Select(e => $"{e.Level}: {e.Message}");

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            _entries.Enqueue((logLevel, formatter(state, exception)));
    }

    private static async Task<RunningDirectory> StartAsync(TestHost host)
    {
        var directory = host.Create<DeviceDirectory>();
        await directory.StartAsync(CancellationToken.None);
        await WaitAsync(() => directory.Listening, "the directory to listen");
        return new RunningDirectory(directory);
    }

    /// <summary>The server process of the directory's listening session.</summary>
    private static async Task<int> ListenerAsync(TestHost host)
    {
        await using var connection = new NpgsqlConnection(host.PostgresConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT pid FROM pg_stat_activity WHERE application_name = $1", connection) { Parameters = { new() { Value = $"depin-directory:{Schema}" } } };
        return (int)(await command.ExecuteScalarAsync())!;
    }

    private static async Task WaitAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"Waited 30 s for {what}.");
            await Task.Delay(50);
        }
    }

    /// <summary>A directory stopped when the test ends.</summary>
    private sealed class RunningDirectory(DeviceDirectory directory) : IAsyncDisposable
    {
        public int Count => directory.Count;
        public int RememberedMisses => directory.RememberedMisses;
        public bool Listening => directory.Listening;
        public ValueTask<DeviceKind?[]> LookupAsync(IReadOnlyList<EthAddress> addresses, CancellationToken cancellation) => directory.LookupAsync(addresses, cancellation);

        public async ValueTask DisposeAsync()
        {
            await directory.StopAsync(CancellationToken.None);
            directory.Dispose();
        }
    }
}
