using System.Net;
using System.Net.Http.Json;
using System.Numerics;
using System.Text.Json;
using Pipeline.Cli.Hosting;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Rewards.Chain;
using Pipeline.Rewards.Epochs;
using Pipeline.Tests.Integration.Streams;
using V = Pipeline.Core.Signals.SignalCatalog.Vehicle;

namespace Pipeline.Tests.Integration.Rewards;

/// <summary>
/// The whole pipeline with the rewards stage on one-minute epochs, a short grace and a chain given by its URL, in a
/// data folder and schema of its own; and devices that send signed readings in the epoch now running.
/// </summary>
public static class RewardsStack
{
    public static readonly TimeSpan EpochLength = TimeSpan.FromMinutes(1);

    public static RewardPolicy Policy { get; } = RewardPolicy.Load(Path.Combine(Support.RepositoryTools.Root, "rewards", "policies", "v1.json"));

    /// <summary>A host with every role (or those given), with more settings if given; the schema is emptied first unless <paramref name="keepSchema"/> (a restart).</summary>
    public static Task<TestHost> StartAsync(StackFixture fixture, string schema, string data, string rpcUrl, bool keepSchema = false, Roles roles = Roles.All, Dictionary<string, string?>? settings = null)
    {
        var values = new Dictionary<string, string?>
        {
            ["Data:Directory"] = data,
            ["Lake:EpochLength"] = "00:01:00",
            ["Rewards:Grace"] = "00:00:02",
            ["Rewards:PollInterval"] = "00:00:00.250",
            ["Chain:RpcUrl"] = rpcUrl,
            ["Chain:Local"] = "true",
            ["Chain:ReceiptTimeout"] = "00:00:03",
            ["Payments:PollInterval"] = "00:00:00.250",
            ["Marketplace:OperatorKeyFile"] = OperatorKeyFile(data),
            ["Marketplace:CreditsPerThousandRows:vehicle_signals"] = "1000", // a credit per row: sales worth counting
        };
        foreach (var (key, value) in settings ?? []) values[key] = value;
        if (keepSchema) values["EventStore:Schema"] = schema;
        return TestHost.StartAsync(fixture, roles, values, keepSchema ? null : schema);
    }

    /// <summary>Where the marketplace's operator key (its SHA-256) is kept; a test creates the key there.</summary>
    public static string OperatorKeyFile(string data) => Path.Combine(data, "marketplace", "operator-key.sha256");

    public static long EpochAt(DateTimeOffset time) => (long)Math.Floor((time - DateTimeOffset.UnixEpoch) / EpochLength);

    /// <summary>
    /// The epoch to send in: the current one if at least <paramref name="room"/> of it is left, else the next, once it
    /// has begun — so that a device's readings of one phase all fall in one epoch.
    /// </summary>
    public static async Task<long> EpochWithRoomAsync(TimeSpan room)
    {
        var now = DateTimeOffset.UtcNow;
        var epoch = EpochAt(now);
        var end = DateTimeOffset.UnixEpoch + EpochLength * (epoch + 1);
        if (end - now >= room) return epoch;
        await Task.Delay(end - now + TimeSpan.FromMilliseconds(50));
        return epoch + 1;
    }

    /// <summary>Polls the API until the epoch reaches <paramref name="status"/>.</summary>
    public static async Task<JsonElement> WaitForEpochAsync(TestHost host, long epoch, string status, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromMinutes(3));
        while (true)
        {
            var response = await host.Api.GetAsync($"/v1/rewards/epochs/{epoch}");
            if (response.StatusCode == HttpStatusCode.OK)
            {
                var found = await response.Content.ReadFromJsonAsync<JsonElement>();
                if (found.GetProperty("status").GetString() == status) return found;
            }
            Assert.True(DateTime.UtcNow < deadline, $"Epoch {epoch} did not become {status} in time; last answer {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
            await Task.Delay(250);
        }
    }

    public static async Task<BigInteger> RootPublishedLogsAsync(ChainClient client, string distributor, long epoch)
    {
        var published = client.Web3.Eth.GetEvent<RootPublishedEventDto>(distributor);
        var logs = await published.GetAllChangesAsync(published.CreateFilterInput((ulong)epoch, Nethereum.RPC.Eth.DTOs.BlockParameter.CreateEarliest(), Nethereum.RPC.Eth.DTOs.BlockParameter.CreateLatest()));
        return logs.Count;
    }

    public static BigInteger Amount(JsonElement element, string property) => BigInteger.Parse(element.GetProperty(property).GetString()!);
}

/// <summary>A registered device and its owner, sending signed readings over HTTP with rising seq; positions near Dublin.</summary>
public sealed class RewardedDevice(TestHost host, string name)
{
    public string Name { get; } = name;
    public EthKey Owner { get; } = EthKey.Generate();
    public EthKey Key { get; } = EthKey.Generate();
    public string OwnerAddress => Owner.Address.ToLowerHex();
    public string Address => Key.Address.ToLowerHex();
    private long _seq;

    public Task RegisterAsync() => Registration.RegisterAsync(host, Key, DeviceKind.Vehicle, Owner);

    /// <summary>Good readings: speed and position, the core signals, each a few metres on.</summary>
    public async Task SendGoodAsync(int count)
    {
        for (var i = 0; i < count; i++) await SendAsync(DateTimeOffset.UtcNow, Position(53.35 + _seq * 0.00001, 50));
    }

    public Task SendAsync(DateTimeOffset at, Dictionary<string, double> signals) => SendAsync(++_seq, at, signals);

    /// <summary>Signs and sends a reading with this seq, whatever was sent before (an equivocator reuses one).</summary>
    public async Task SendAsync(long seq, DateTimeOffset at, Dictionary<string, double> signals)
    {
        var payload = ReadingWriter.Payload(Key.Address, seq, at, DeviceKind.Vehicle, signals);
        var response = await host.Ingest.PostAsync("/v1/readings", new ByteArrayContent(ReadingWriter.Sign(Key, payload)) { Headers = { ContentType = new("application/json") } });
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
    }

    public long LastSeq => _seq;

    public static Dictionary<string, double> Position(double latitude, double speed) =>
        new() { [V.Speed] = speed, [V.Latitude] = latitude, [V.Longitude] = -6.26 };

    public Task WaitForProcessorsAsync() => PipelineProbe.WaitForProcessorsAsync(host, host.RawTopic);
}
