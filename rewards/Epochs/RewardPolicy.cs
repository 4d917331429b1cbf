using System.Numerics;
using System.Text.Json;
using System.Text.Json.Serialization;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Core.Signals;

namespace Pipeline.Rewards.Epochs;

/// <summary>
/// How an epoch's rewards are computed: versioned data, identified by the keccak256 of its canonical JSON
/// (<see cref="Hash"/>), which every epoch's results record. Fractions are integers in parts per million (ppm), amounts
/// integers in the token's base units (18 decimals). The README's "Rewards" section says how each field is used.
/// </summary>
public sealed record RewardPolicy(
    string Name,
    BigInteger EmissionPerEpoch,
    EthAddress Treasury,
    VolumeCaps VolumeCap,
    QualityWeights QualityWeights,
    IReadOnlyDictionary<string, long> RejectionPenaltyPpm,
    bool EquivocationZeroesDevice,
    StationAgreementRule Agreement,
    SalesShare Sales)
{
    public const long Ppm = 1_000_000;

    private static readonly BigInteger Uint256Limit = BigInteger.One << 256;

    /// <summary>
    /// Reasons only a reading signed by the device itself can earn (the processors check these after the signature).
    /// Any other rejection can be caused by a stranger naming the device, so it cannot cost the device anything.
    /// </summary>
    public static IReadOnlySet<ReasonCode> PenalisableReasons { get; } = new HashSet<ReasonCode>
    {
        ReasonCode.Stale, ReasonCode.Future, ReasonCode.OutOfRange, ReasonCode.UnknownSignal, ReasonCode.UnsupportedPid,
        ReasonCode.SeqConflict, ReasonCode.Teleport,
    };

    /// <summary>The policy's version id: keccak256 of its canonical JSON, 0x + 64 hex digits.</summary>
    [JsonIgnore]
    public string Hash => CanonicalJson.Hash(this);

    /// <summary>Reads and validates a policy; every problem is listed in one <see cref="RewardPolicyException"/>.</summary>
    public static RewardPolicy Parse(string json)
    {
        RewardPolicy? policy;
        try
        {
            policy = JsonSerializer.Deserialize<RewardPolicy>(json, CanonicalJson.Options);
        }
        catch (JsonException e)
        {
            throw new RewardPolicyException([$"not a reward policy: {e.Message}"]);
        }
        if (policy is null) throw new RewardPolicyException(["not a reward policy: the document is null"]);
        policy.Validate();
        return policy;
    }

    public static RewardPolicy Load(string path)
    {
        try
        {
            return Parse(File.ReadAllText(path));
        }
        catch (RewardPolicyException e)
        {
            throw new RewardPolicyException(e.Problems.Select(p => $"{path}: {p}").ToList());
        }
    }

    /// <summary>Throws a <see cref="RewardPolicyException"/> naming every field out of its range.</summary>
    public void Validate()
    {
        var problems = Problems().ToList();
        if (problems.Count > 0) throw new RewardPolicyException(problems);
    }

    private IEnumerable<string> Problems()
    {
        if (Name.Length is 0 or > 64 || !Name.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_'))
            yield return "name: 1 to 64 of A-Z, a-z, 0-9, '.', '-' and '_', e.g. \"v2\"";
        if (EmissionPerEpoch.Sign < 0 || EmissionPerEpoch >= Uint256Limit) yield return "emissionPerEpoch: a uint256 in base units (18 decimals)";
        if (Treasury == default) yield return "treasury: the zero address would burn the remainder; name the treasury's address";
        if (VolumeCap.Vehicle <= 0 || VolumeCap.Weather <= 0) yield return "volumeCap: readings per device and epoch, above 0 for vehicle and weather";
        var weights = QualityWeights;
        if (weights.Uptime < 0 || weights.Completeness < 0 || weights.Timeliness < 0 || weights.Uptime + weights.Completeness + weights.Timeliness is <= 0 or > Ppm)
            yield return "qualityWeights: uptime, completeness and timeliness are 0 or more, their sum between 1 and 1000000";
        foreach (var (reason, penalty) in RejectionPenaltyPpm)
        {
            if (!ReasonCodes.TryParse(reason, out var code)) yield return $"rejectionPenaltyPpm: '{reason}' is not a reason code (see the README's reason codes)";
            else if (!PenalisableReasons.Contains(code) && penalty != 0)
                yield return $"rejectionPenaltyPpm.{reason}: a stranger can cause this rejection for any device, so it cannot be penalised; only {string.Join(", ", PenalisableReasons.Select(r => r.ToWire()).Order(StringComparer.Ordinal))} can";
            if (penalty is < 0 or > Ppm) yield return $"rejectionPenaltyPpm.{reason}: ppm of the score per rejected reading, 0 to 1000000";
        }
        if (Agreement.RadiusMeters is <= 0 or > 1_000_000) yield return "agreement.radiusMeters: 1 to 1000000";
        if (Agreement.MinNeighbours < 1) yield return "agreement.minNeighbours: 1 or more";
        if (Agreement.UnjudgedPpm is < 0 or > Ppm) yield return "agreement.unjudgedPpm: 0 to 1000000";
        if (Agreement.ToleranceMilli.Count == 0) yield return "agreement.toleranceMilli: name at least one weather signal, e.g. \"temperature_c\": 3000";
        foreach (var (signal, tolerance) in Agreement.ToleranceMilli)
        {
            if (!SignalCatalog.For(DeviceKind.Weather).Any(s => s.Column == signal)) yield return $"agreement.toleranceMilli: '{signal}' is not a weather signal column";
            if (tolerance < 0) yield return $"agreement.toleranceMilli.{signal}: thousandths of the signal's unit, 0 or more";
        }
        if (Sales.ContributorSharePpm is < 0 or > Ppm) yield return "sales.contributorSharePpm: 0 to 1000000";
        if (Sales.BaseUnitsPerCredit.Sign < 0 || Sales.BaseUnitsPerCredit >= Uint256Limit) yield return "sales.baseUnitsPerCredit: a uint256";
    }
}

/// <summary>Readings per device and epoch beyond which more readings earn nothing more.</summary>
public sealed record VolumeCaps(long Vehicle, long Weather)
{
    public long For(DeviceKind kind) => kind == DeviceKind.Vehicle ? Vehicle : Weather;
}

/// <summary>Weights of the quality mean: whole numbers, only their ratios matter.</summary>
public sealed record QualityWeights(long Uptime, long Completeness, long Timeliness);

/// <summary>
/// A station agrees on a signal when its epoch mean is within the tolerance of the median of its neighbours' means;
/// neighbours are stations within the radius with a mean for that signal, and it takes at least the minimum of them.
/// A station with nothing to compare gets <see cref="UnjudgedPpm"/>: below 1000000, claiming a lonely spot stops paying.
/// </summary>
public sealed record StationAgreementRule(long RadiusMeters, int MinNeighbours, IReadOnlyDictionary<string, long> ToleranceMilli, long UnjudgedPpm);

/// <summary>
/// The contributors' part of an epoch's sales: credits are worth <see cref="BaseUnitsPerCredit"/> token base units, and
/// contributors share <see cref="ContributorSharePpm"/> of them by the credits their devices' rows earned.
/// </summary>
public sealed record SalesShare(long ContributorSharePpm, BigInteger BaseUnitsPerCredit);

/// <summary>A policy that cannot be used, with every problem found.</summary>
public sealed class RewardPolicyException(IReadOnlyList<string> problems)
    : Exception("The reward policy is invalid: " + string.Join("; ", problems))
{
    public IReadOnlyList<string> Problems { get; } = problems;
}
