using Microsoft.Extensions.DependencyInjection;
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
