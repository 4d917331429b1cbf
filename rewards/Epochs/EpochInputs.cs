using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;

namespace Pipeline.Rewards.Epochs;

/// <summary>
/// Everything an epoch's rewards depend on besides the policy and the cumulative amounts before it: plain data, read
/// from the lake, the registry and the marketplace when the epoch is final, and kept in the reward file so anyone can
/// compute the epoch again. Order does not matter; <see cref="Hash"/> sorts before hashing.
/// </summary>
public sealed record EpochInputs(
    long Epoch,
    IReadOnlyList<DeviceEpochQuality> Devices,
    IReadOnlyList<StationEpochMeans> Stations,
    IReadOnlyList<DeviceOwner> Owners,
    IReadOnlyList<DeviceSales> Sales)
{
    /// <summary>The same inputs with every list sorted by device: the canonical form.</summary>
    public EpochInputs Sorted() => this with
    {
        Devices = [.. Devices.OrderBy(d => d.Device.ToLowerHex(), StringComparer.Ordinal)],
        Stations = [.. Stations.OrderBy(s => s.Station.ToLowerHex(), StringComparer.Ordinal)],
        Owners = [.. Owners.OrderBy(o => o.Device.ToLowerHex(), StringComparer.Ordinal)],
        Sales = [.. Sales.OrderBy(s => s.Device.ToLowerHex(), StringComparer.Ordinal)],
    };

    /// <summary>keccak256 of the canonical JSON of the sorted inputs.</summary>
    public string Hash() => CanonicalJson.Hash(Sorted());
}

/// <summary>
/// One row of the lake's <c>device_quality</c> view for one device and epoch. The view's fractions (uptime,
/// completeness) arrive here as whole parts per million (<see cref="FromLake"/>), so everything after is integer.
/// </summary>
public sealed record DeviceEpochQuality(
    EthAddress Device,
    DeviceKind Kind,
    long Accepted,
    long Rejected,
    long UptimePpm,
    long CompletenessPpm,
    long Equivocations,
    IReadOnlyDictionary<string, long> RejectionsByReason)
{
    /// <summary>From the view's columns; a fraction becomes the nearest whole ppm (ties to even).</summary>
    public static DeviceEpochQuality FromLake(EthAddress device, DeviceKind kind, long accepted, long rejected, double uptime,
        double completeness, long equivocations, IReadOnlyDictionary<string, long> rejectionsByReason) =>
        new(device, kind, accepted, rejected, ToPpm(uptime), ToPpm(completeness), equivocations, rejectionsByReason);

    private static long ToPpm(double fraction) =>
        double.IsFinite(fraction) ? (long)Math.Round(Math.Clamp(fraction, 0, 1) * RewardPolicy.Ppm, MidpointRounding.ToEven) : 0;

    public long RejectedFor(ReasonCode reason) => RejectionsByReason.GetValueOrDefault(reason.ToWire());
}

/// <summary>
/// A weather station's position (microdegrees) and its epoch means per signal column (thousandths of the unit, e.g.
/// <c>temperature_c</c> 21437 = 21.437 °C), for agreement with its neighbours.
/// </summary>
public sealed record StationEpochMeans(EthAddress Station, long LatitudeMicrodegrees, long LongitudeMicrodegrees, IReadOnlyDictionary<string, long> MeansMilli);

/// <summary>Who owned a device at the end of the epoch (the registry's state then): the owner is paid for the whole epoch.</summary>
public sealed record DeviceOwner(EthAddress Device, EthAddress Owner);

/// <summary>What the marketplace sold of a device's rows in the epoch (the lines of its <c>SalesAttributed</c> events summed).</summary>
public sealed record DeviceSales(EthAddress Device, long Rows, long Credits);
