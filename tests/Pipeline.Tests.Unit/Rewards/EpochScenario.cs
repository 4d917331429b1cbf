using System.Numerics;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Rewards.Epochs;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Unit.Rewards;

/// <summary>Builds epoch inputs by name: devices, their owners, stations and sales, for the calculator's tests.</summary>
public sealed class EpochScenario(long epoch = 1)
{
    private readonly List<DeviceEpochQuality> _devices = [];
    private readonly List<StationEpochMeans> _stations = [];
    private readonly List<DeviceOwner> _owners = [];
    private readonly List<DeviceSales> _sales = [];

    public static RewardPolicy DefaultPolicy { get; } = RewardPolicy.Load(Path.Combine(RepositoryTools.Root, "rewards", "policies", "v1.json"));

    /// <summary>A stable address for a name (the last 20 bytes of its keccak256).</summary>
    public static EthAddress Address(string name) => new(Keccak256.Hash(System.Text.Encoding.UTF8.GetBytes(name)).AsSpan(12));

    /// <summary>A device that reported every minute with complete readings, as an honest one does; change what the test needs.</summary>
    public EpochScenario Device(string name, string owner, DeviceKind kind = DeviceKind.Vehicle, long accepted = 3000,
        long uptimePpm = 1_000_000, long completenessPpm = 1_000_000, Dictionary<string, long>? rejections = null)
    {
        rejections ??= [];
        _devices.Add(new DeviceEpochQuality(Address(name), kind, accepted, rejections.Values.Sum(), uptimePpm, completenessPpm,
            rejections.GetValueOrDefault(ReasonCode.SeqConflict.ToWire()), rejections));
        _owners.Add(new DeviceOwner(Address(name), Address(owner)));
        return this;
    }

    /// <summary>A weather station at a position (degrees) with its epoch means (milli-units by column).</summary>
    public EpochScenario Station(string name, string owner, double latitude, double longitude, long temperatureMilli, long humidityMilli)
    {
        Device(name, owner, DeviceKind.Weather, accepted: 120);
        _stations.Add(new StationEpochMeans(Address(name), (long)Math.Round(latitude * 1e6), (long)Math.Round(longitude * 1e6),
            new Dictionary<string, long> { ["temperature_c"] = temperatureMilli, ["humidity_pct"] = humidityMilli }));
        return this;
    }

    public EpochScenario Sold(string device, long rows, long credits)
    {
        _sales.Add(new DeviceSales(Address(device), rows, credits));
        return this;
    }

    public EpochInputs Inputs => new(epoch, _devices, _stations, _owners, _sales);

    public EpochRewards Calculate(RewardPolicy? policy = null, IReadOnlyDictionary<EthAddress, BigInteger>? previous = null) =>
        EpochCalculator.Calculate(policy ?? DefaultPolicy, Inputs, previous ?? new Dictionary<EthAddress, BigInteger>());

    public static DeviceReward DeviceOf(EpochRewards rewards, string name) => rewards.Devices.Single(d => d.Device == Address(name));

    public static ContributorReward ContributorOf(EpochRewards rewards, string name) => rewards.Contributors.Single(c => c.Account == Address(name));

    public static BigInteger Total(EpochRewards rewards) =>
        rewards.Devices.Aggregate(BigInteger.Zero, (sum, d) => sum + d.Amount) + rewards.Treasury;
}
