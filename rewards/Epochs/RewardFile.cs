using System.Numerics;
using System.Text.Json;
using Apache.Arrow;
using ParquetSharp;
using Pipeline.Core.Crypto;

namespace Pipeline.Rewards.Epochs;

/// <summary>
/// An epoch's reward file: the policy, the inputs and the cumulative amounts before the epoch (everything needed to
/// compute it again), the results and their Merkle root. Written as canonical JSON, so its keccak256 — the content hash
/// published with the root — is the hash of the file's bytes; the per-device and per-contributor rows also go to
/// Parquet for the lake's readers.
/// </summary>
public sealed record RewardFile(
    string Format,
    RewardPolicy Policy,
    EpochInputs Inputs,
    IReadOnlyList<PreviousCumulative> PreviousCumulative,
    EpochRewards Rewards,
    string? MerkleRoot)
{
    public const string CurrentFormat = "depin-rewards/1";

    /// <summary>Computes the epoch and packs everything that went into it.</summary>
    public static RewardFile Create(RewardPolicy policy, EpochInputs inputs, IReadOnlyDictionary<EthAddress, BigInteger> previousCumulative)
    {
        var rewards = EpochCalculator.Calculate(policy, inputs, previousCumulative);
        var previous = previousCumulative.Select(p => new PreviousCumulative(p.Key, p.Value)).OrderBy(p => p.Account.ToLowerHex(), StringComparer.Ordinal).ToList();
        return new RewardFile(CurrentFormat, policy, inputs.Sorted(), previous, rewards, rewards.MerkleRoot());
    }

    public byte[] ToCanonicalJson() => CanonicalJson.Serialize(this);

    /// <summary>keccak256 of the file's bytes (0x + 64 hex digits): the content hash published with the root.</summary>
    public string ContentHash() => Hex.Encode0x(Keccak256.Hash(ToCanonicalJson()));

    public static RewardFile Parse(ReadOnlySpan<byte> json)
    {
        try
        {
            var file = JsonSerializer.Deserialize<RewardFile>(json, CanonicalJson.Options) ?? throw new JsonException("the document is null");
            if (file.Format != CurrentFormat) throw new JsonException($"format '{file.Format}' is not {CurrentFormat}");
            // The content hash is over these bytes: a file that is not the canonical form of what it holds (reformatted, or
            // a derived figure such as an amount edited) would not hash to the published one.
            if (!file.ToCanonicalJson().AsSpan().SequenceEqual(json)) throw new JsonException("it is not in canonical form (reformatted, or a derived figure such as an amount edited)");
            return file;
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"Not a reward file: {e.Message}", e);
        }
    }

    /// <summary>
    /// Computes the epoch again from the file's own policy, inputs and previous amounts, and compares: the root, and
    /// every recorded figure. What <c>depin rewards verify --from</c> does before comparing the root with the chain's.
    /// </summary>
    public RewardFileCheck Recompute()
    {
        var problems = new List<string>();
        RewardFile again;
        try
        {
            again = Create(Policy, Inputs, PreviousCumulative.ToDictionary(p => p.Account, p => p.CumulativeAmount));
        }
        catch (Exception e) when (e is RewardPolicyException or EpochInputsException or ArgumentException)
        {
            return new RewardFileCheck(false, null, [e.Message]);
        }
        if (again.MerkleRoot != MerkleRoot) problems.Add($"merkle root: the file says {MerkleRoot ?? "none"}, the inputs give {again.MerkleRoot ?? "none"}");
        if (again.Rewards.PolicyHash != Rewards.PolicyHash) problems.Add($"policy hash: the file says {Rewards.PolicyHash}, its policy hashes to {again.Rewards.PolicyHash}");
        if (again.Rewards.InputsHash != Rewards.InputsHash) problems.Add($"inputs hash: the file says {Rewards.InputsHash}, its inputs hash to {again.Rewards.InputsHash}");
        if (!again.ToCanonicalJson().AsSpan().SequenceEqual(ToCanonicalJson())) problems.Add("figures: the recorded amounts or scores differ from the recomputed ones");
        return new RewardFileCheck(problems.Count == 0, again.MerkleRoot, problems);
    }

    /// <summary>Writes <c>epoch-N.json</c>, <c>epoch-N.devices.parquet</c> and <c>epoch-N.contributors.parquet</c>; returns the JSON's path.</summary>
    public string Write(string directory)
    {
        Directory.CreateDirectory(directory);
        var stem = Path.Combine(directory, $"epoch-{Rewards.Epoch}");
        File.WriteAllBytes(stem + ".json", ToCanonicalJson());
        WriteParquet(stem + ".devices.parquet", DeviceColumns());
        WriteParquet(stem + ".contributors.parquet", ContributorColumns());
        return stem + ".json";
    }

    public static RewardFile Read(string path) => Parse(File.ReadAllBytes(path));

    // Amounts exceed 64 bits (and DuckDB's DECIMAL(38)) in principle, so they are decimal strings; readers cast them.
    private List<(string Name, IArrowArray Values)> DeviceColumns()
    {
        var devices = Rewards.Devices;
        return
        [
            ("epoch", Longs(devices.Select(_ => Rewards.Epoch))),
            ("device", Strings(devices.Select(d => d.Device.ToLowerHex()))),
            ("owner", Strings(devices.Select(d => d.Owner.ToLowerHex()))),
            ("kind", Strings(devices.Select(d => d.Kind?.ToString().ToLowerInvariant() ?? ""))),
            ("accepted", Longs(devices.Select(d => d.Accepted))),
            ("rejected", Longs(devices.Select(d => d.Rejected))),
            ("capped_volume", Longs(devices.Select(d => d.CappedVolume))),
            ("uptime_ppm", Longs(devices.Select(d => d.UptimePpm))),
            ("completeness_ppm", Longs(devices.Select(d => d.CompletenessPpm))),
            ("timeliness_ppm", Longs(devices.Select(d => d.TimelinessPpm))),
            ("quality_ppm", Longs(devices.Select(d => d.QualityPpm))),
            ("agreement_ppm", Longs(devices.Select(d => d.AgreementPpm))),
            ("penalty_ppm", Longs(devices.Select(d => d.PenaltyPpm))),
            ("score", Strings(devices.Select(d => d.Score.ToString()))),
            ("emission_amount", Strings(devices.Select(d => d.EmissionAmount.ToString()))),
            ("sold_rows", Longs(devices.Select(d => d.SoldRows))),
            ("sold_credits", Longs(devices.Select(d => d.SoldCredits))),
            ("sales_amount", Strings(devices.Select(d => d.SalesAmount.ToString()))),
            ("amount", Strings(devices.Select(d => d.Amount.ToString()))),
            ("policy_hash", Strings(devices.Select(_ => Rewards.PolicyHash))),
        ];
    }

    private List<(string Name, IArrowArray Values)> ContributorColumns()
    {
        var contributors = Rewards.Contributors;
        return
        [
            ("epoch", Longs(contributors.Select(_ => Rewards.Epoch))),
            ("account", Strings(contributors.Select(c => c.Account.ToLowerHex()))),
            ("devices", Longs(contributors.Select(c => (long)c.Devices))),
            ("emission_amount", Strings(contributors.Select(c => c.EmissionAmount.ToString()))),
            ("sales_amount", Strings(contributors.Select(c => c.SalesAmount.ToString()))),
            ("amount", Strings(contributors.Select(c => c.Amount.ToString()))),
            ("cumulative_amount", Strings(contributors.Select(c => c.CumulativeAmount.ToString()))),
            ("merkle_root", Strings(contributors.Select(_ => MerkleRoot ?? ""))),
        ];
    }

    private static void WriteParquet(string path, List<(string Name, IArrowArray Values)> columns)
    {
        var schema = new Schema.Builder();
        foreach (var (name, values) in columns) schema.Field(f => f.Name(name).DataType(values.Data.DataType).Nullable(false));
        var built = schema.Build();
        using var properties = new WriterPropertiesBuilder().Compression(Compression.Zstd).CreatedBy("depin-pipeline rewards").Build();
        using var writer = new ParquetSharp.Arrow.FileWriter(path, built, properties);
        writer.WriteRecordBatch(new RecordBatch(built, columns.Select(c => c.Values), columns[0].Values.Length));
        writer.Close();
    }

    private static Int64Array Longs(IEnumerable<long> values) => new Int64Array.Builder().AppendRange(values).Build();

    private static StringArray Strings(IEnumerable<string> values) => new StringArray.Builder().AppendRange(values).Build();
}

/// <summary>A contributor's cumulative amount before the epoch: the previous reward file's, or nothing for the first epoch.</summary>
public sealed record PreviousCumulative(EthAddress Account, BigInteger CumulativeAmount);

/// <summary>The result of computing a reward file again: whether everything matched, the root the inputs give, and what differed.</summary>
public sealed record RewardFileCheck(bool Matches, string? RecomputedRoot, IReadOnlyList<string> Problems);
