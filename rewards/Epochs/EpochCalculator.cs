using System.Numerics;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;

namespace Pipeline.Rewards.Epochs;

/// <summary>
/// Computes an epoch's rewards from a policy, the epoch's inputs and the cumulative amounts before it: a pure,
/// integer-only function whose result does not depend on the order of the inputs. Every division rounds down; what the
/// floors leave of the emission and of the sales share goes to the treasury. The README's "Rewards" section is this code.
/// </summary>
public static class EpochCalculator
{
    private const long Ppm = RewardPolicy.Ppm;

    public static EpochRewards Calculate(RewardPolicy policy, EpochInputs inputs, IReadOnlyDictionary<EthAddress, BigInteger> previousCumulative)
    {
        policy.Validate();
        inputs = inputs.Sorted();
        CheckInputs(inputs, previousCumulative);

        var owners = inputs.Owners.ToDictionary(o => o.Device, o => o.Owner);
        var quality = inputs.Devices.ToDictionary(d => d.Device);
        var sales = inputs.Sales.ToDictionary(s => s.Device);
        var agreement = StationAgreement.Compute(policy.Agreement, inputs.Stations);

        var devices = quality.Keys.Union(sales.Keys).OrderBy(d => d.ToLowerHex(), StringComparer.Ordinal)
            .Select(device => Score(policy, device, owners[device], quality.GetValueOrDefault(device), agreement))
            .ToList();

        var totalScore = Sum(devices.Select(d => d.Score));
        var totalCredits = Sum(inputs.Sales.Select(s => (BigInteger)s.Credits));
        var salesShare = totalCredits * policy.Sales.BaseUnitsPerCredit * policy.Sales.ContributorSharePpm / Ppm;

        devices = [.. devices.Select(d =>
        {
            var sold = sales.GetValueOrDefault(d.Device);
            return d with
            {
                EmissionAmount = totalScore.IsZero ? 0 : policy.EmissionPerEpoch * d.Score / totalScore,
                SoldRows = sold?.Rows ?? 0,
                SoldCredits = sold?.Credits ?? 0,
                SalesAmount = totalCredits.IsZero || sold is null ? 0 : salesShare * sold.Credits / totalCredits,
            };
        })];

        var earned = devices.GroupBy(d => d.Owner).ToDictionary(g => g.Key, g => g.ToList());
        var contributors = earned.Keys.Union(previousCumulative.Keys).OrderBy(a => a.ToLowerHex(), StringComparer.Ordinal).Select(account =>
        {
            var own = earned.GetValueOrDefault(account) ?? [];
            var emission = Sum(own.Select(d => d.EmissionAmount));
            var sold = Sum(own.Select(d => d.SalesAmount));
            return new ContributorReward(account, own.Count, emission, sold, previousCumulative.GetValueOrDefault(account) + emission + sold);
        }).ToList();

        var treasury = policy.EmissionPerEpoch + salesShare - Sum(devices.Select(d => d.Amount));
        return new EpochRewards(inputs.Epoch, policy.Hash, inputs.Hash(), policy.EmissionPerEpoch, salesShare, totalScore, treasury, devices, contributors);
    }

    /// <summary>The device's score and its components; amounts are filled in once every score is known.</summary>
    private static DeviceReward Score(RewardPolicy policy, EthAddress device, EthAddress owner, DeviceEpochQuality? row, Dictionary<EthAddress, long> agreement)
    {
        if (row is null)
            return new DeviceReward(device, owner, null, 0, 0, 0, 0, 0, 0, 0, Ppm, 0, false, 0, 0, 0, 0, 0);

        var cappedVolume = Math.Min(row.Accepted, policy.VolumeCap.For(row.Kind));
        var late = row.RejectedFor(ReasonCode.Stale) + row.RejectedFor(ReasonCode.Future);
        var timeliness = row.Accepted == 0 ? 0 : row.Accepted * Ppm / (row.Accepted + late);
        var weights = policy.QualityWeights;
        var qualityPpm = (weights.Uptime * row.UptimePpm + weights.Completeness * row.CompletenessPpm + weights.Timeliness * timeliness)
            / (weights.Uptime + weights.Completeness + weights.Timeliness);
        var agreementPpm = row.Kind == DeviceKind.Weather ? agreement.GetValueOrDefault(device, Ppm) : Ppm;

        var equivocated = row.Equivocations > 0;
        BigInteger penalty = 0;
        foreach (var (reason, count) in row.RejectionsByReason)
            penalty += (BigInteger)count * policy.RejectionPenaltyPpm.GetValueOrDefault(reason);
        var penaltyPpm = equivocated && policy.EquivocationZeroesDevice ? Ppm : (long)BigInteger.Min(penalty, Ppm);

        var score = (BigInteger)cappedVolume * qualityPpm * agreementPpm * (Ppm - penaltyPpm);
        return new DeviceReward(device, owner, row.Kind, row.Accepted, row.Rejected, cappedVolume, row.UptimePpm, row.CompletenessPpm,
            timeliness, qualityPpm, agreementPpm, penaltyPpm, equivocated, score, 0, 0, 0, 0);
    }

    /// <summary>Inputs a calculation cannot use, named; counts and positions come from strangers' devices, so each is bounded.</summary>
    private static void CheckInputs(EpochInputs inputs, IReadOnlyDictionary<EthAddress, BigInteger> previousCumulative)
    {
        var problems = new List<string>();
        void Duplicates<T>(string what, IEnumerable<T> items, Func<T, EthAddress> key)
        {
            foreach (var device in items.GroupBy(key).Where(g => g.Count() > 1).Select(g => g.Key))
                problems.Add($"{what}: {device.ToLowerHex()} appears more than once");
        }
        Duplicates("devices", inputs.Devices, d => d.Device);
        Duplicates("stations", inputs.Stations, s => s.Station);
        Duplicates("owners", inputs.Owners, o => o.Device);
        Duplicates("sales", inputs.Sales, s => s.Device);

        const long MaxCount = 1L << 40;
        var owned = inputs.Owners.Select(o => o.Device).ToHashSet();
        foreach (var d in inputs.Devices)
        {
            var name = d.Device.ToLowerHex();
            if (!owned.Contains(d.Device)) problems.Add($"devices: {name} has no owner at the epoch's end");
            if (d.Accepted is < 0 or > MaxCount || d.Rejected is < 0 or > MaxCount || d.Equivocations is < 0 or > MaxCount)
                problems.Add($"devices: {name} has a count below 0 or above 2^40");
            if (d.UptimePpm is < 0 or > Ppm || d.CompletenessPpm is < 0 or > Ppm) problems.Add($"devices: {name} has a fraction outside 0..1000000 ppm");
            if (d.RejectionsByReason.Values.Any(c => c is < 0 or > MaxCount)) problems.Add($"devices: {name} has a rejection count below 0 or above 2^40");
        }
        foreach (var s in inputs.Sales)
        {
            if (!owned.Contains(s.Device)) problems.Add($"sales: {s.Device.ToLowerHex()} has no owner at the epoch's end");
            if (s.Rows is < 0 or > MaxCount || s.Credits is < 0 or > MaxCount) problems.Add($"sales: {s.Device.ToLowerHex()} has rows or credits below 0 or above 2^40");
        }
        foreach (var s in inputs.Stations)
        {
            if (s.LatitudeMicrodegrees is < -90_000_000 or > 90_000_000 || s.LongitudeMicrodegrees is < -180_000_000 or > 180_000_000)
                problems.Add($"stations: {s.Station.ToLowerHex()} lies outside ±90° latitude or ±180° longitude");
            if (s.MeansMilli.Values.Any(m => Math.Abs(m) > MaxCount)) problems.Add($"stations: {s.Station.ToLowerHex()} has a mean beyond ±2^40 thousandths");
        }
        if (previousCumulative.Values.Any(a => a.Sign < 0)) problems.Add("previous cumulative amounts: an amount below 0");
        if (problems.Count > 0) throw new EpochInputsException(problems);
    }

    private static BigInteger Sum(IEnumerable<BigInteger> values) => values.Aggregate(BigInteger.Zero, (sum, v) => sum + v);
}

/// <summary>Epoch inputs that cannot be computed, with every problem found.</summary>
public sealed class EpochInputsException(IReadOnlyList<string> problems)
    : Exception("The epoch's inputs are invalid: " + string.Join("; ", problems))
{
    public IReadOnlyList<string> Problems { get; } = problems;
}
