using System.Numerics;
using System.Text.Json.Nodes;
using Pipeline.Rewards.Epochs;
using Pipeline.Tests.Support;
using static Pipeline.Tests.Unit.Rewards.EpochScenario;

namespace Pipeline.Tests.Unit.Rewards;

/// <summary>The policy as versioned data: its hash is its version, and only sound policies load.</summary>
public sealed class RewardPolicyTests
{
    private static readonly string DefaultPolicyPath = Path.Combine(RepositoryTools.Root, "rewards", "policies", "v1.json");

    [Fact]
    public void Hash_OfTheDefaultPolicy_EqualsKeccakOfTheCanonicalJsonComputedByEthers()
    {
        // The canonical form rebuilt independently: keys sorted at every level, no whitespace; keccak256 by ethers.
        const string script = """
            const {keccak256, toUtf8Bytes} = require('ethers');
            const sort = v => Array.isArray(v) ? v.map(sort) : v && typeof v === 'object'
              ? Object.fromEntries(Object.keys(v).sort().map(k => [k, sort(v[k])])) : v;
            const policy = JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8'));
            console.log(keccak256(toUtf8Bytes(JSON.stringify(sort(policy)))));
            """;
        var expected = RepositoryTools.Node(script, File.ReadAllText(DefaultPolicyPath));

        Assert.Equal(expected, DefaultPolicy.Hash);
    }

    [Fact]
    public void Hash_DoesNotDependOnLayoutOrKeyOrder()
    {
        var json = JsonNode.Parse(File.ReadAllText(DefaultPolicyPath))!.AsObject();
        var reordered = new JsonObject(json.Reverse().Select(p => KeyValuePair.Create(p.Key, p.Value?.DeepClone())));

        Assert.Equal(DefaultPolicy.Hash, RewardPolicy.Parse(reordered.ToJsonString()).Hash);
        Assert.Equal(DefaultPolicy.Hash, RewardPolicy.Parse(json.ToJsonString(new() { WriteIndented = true })).Hash);
    }

    [Fact]
    public void Hash_ChangesWithEveryField()
    {
        var p = DefaultPolicy;
        RewardPolicy[] variants =
        [
            p with { Name = "v1b" },
            p with { EmissionPerEpoch = p.EmissionPerEpoch + 1 },
            p with { Treasury = Address("another treasury") },
            p with { VolumeCap = p.VolumeCap with { Vehicle = p.VolumeCap.Vehicle + 1 } },
            p with { VolumeCap = p.VolumeCap with { Weather = p.VolumeCap.Weather + 1 } },
            p with { QualityWeights = p.QualityWeights with { Uptime = p.QualityWeights.Uptime + 1 } },
            p with { QualityWeights = p.QualityWeights with { Completeness = p.QualityWeights.Completeness + 1 } },
            p with { QualityWeights = p.QualityWeights with { Timeliness = p.QualityWeights.Timeliness + 1 } },
            p with { RejectionPenaltyPpm = Changed(p.RejectionPenaltyPpm, "teleport", 1) },
            p with { RejectionPenaltyPpm = p.RejectionPenaltyPpm.Where(r => r.Key != "unsupported_pid").ToDictionary() },
            p with { EquivocationZeroesDevice = !p.EquivocationZeroesDevice },
            p with { Agreement = p.Agreement with { RadiusMeters = p.Agreement.RadiusMeters + 1 } },
            p with { Agreement = p.Agreement with { MinNeighbours = p.Agreement.MinNeighbours + 1 } },
            p with { Agreement = p.Agreement with { UnjudgedPpm = p.Agreement.UnjudgedPpm - 1 } },
            p with { Agreement = p.Agreement with { ToleranceMilli = Changed(p.Agreement.ToleranceMilli, "temperature_c", 1) } },
            p with { Sales = p.Sales with { ContributorSharePpm = p.Sales.ContributorSharePpm + 1 } },
            p with { Sales = p.Sales with { BaseUnitsPerCredit = p.Sales.BaseUnitsPerCredit + 1 } },
        ];

        var hashes = variants.Select(v => v.Hash).Append(p.Hash).ToList();
        Assert.Equal(hashes.Count, hashes.Distinct().Count());
        Assert.All(hashes, h => Assert.Matches("^0x[0-9a-f]{64}$", h));
    }

    [Fact]
    public void Parse_AnUnsoundPolicy_NamesEveryProblem()
    {
        var json = JsonNode.Parse(File.ReadAllText(DefaultPolicyPath))!.AsObject();
        json["name"] = "";
        json["treasury"] = "0x0000000000000000000000000000000000000000";
        json["volumeCap"]!["vehicle"] = 0;
        json["qualityWeights"] = new JsonObject { ["uptime"] = 0, ["completeness"] = 0, ["timeliness"] = 0 };
        json["rejectionPenaltyPpm"]!["teleport"] = 2_000_000;
        json["rejectionPenaltyPpm"]!["signer_mismatch"] = 1;
        json["rejectionPenaltyPpm"]!["speeding"] = 1;
        json["agreement"]!["toleranceMilli"]!["wind_chill"] = 1;
        json["sales"]!["contributorSharePpm"] = -1;

        var error = Assert.Throws<RewardPolicyException>(() => RewardPolicy.Parse(json.ToJsonString()));

        string[] named = ["name:", "treasury:", "volumeCap:", "qualityWeights:", "rejectionPenaltyPpm.teleport:", "rejectionPenaltyPpm.signer_mismatch: a stranger",
            "'speeding' is not a reason code", "'wind_chill' is not a weather signal", "sales.contributorSharePpm:"];
        Assert.All(named, n => Assert.Contains(error.Problems, p => p.Contains(n, StringComparison.Ordinal)));
        Assert.Equal(named.Length, error.Problems.Count);
    }

    [Theory]
    [InlineData("""{"name":"v1","emissionPerEpoch":1000}""", "decimal string")]
    [InlineData("""{"name":"v1","emissionPerEpoch":"-5"}""", "decimal string of up to 78 digits")]
    [InlineData("""{"name":"v1","treasury":"0xnothex"}""", "not an Ethereum address")]
    [InlineData("""{"name":"v1","emisionPerEpoch":"5"}""", "emisionPerEpoch")]
    [InlineData("[]", "not a reward policy")]
    public void Parse_MalformedJson_SaysWhatIsWrong(string json, string expected)
    {
        var error = Assert.Throws<RewardPolicyException>(() => RewardPolicy.Parse(json));

        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_EmissionBeyondUint256_IsRefused()
    {
        var error = Assert.Throws<RewardPolicyException>(() => (DefaultPolicy with { EmissionPerEpoch = BigInteger.One << 256 }).Validate());

        Assert.Contains(error.Problems, p => p.StartsWith("emissionPerEpoch", StringComparison.Ordinal));
    }

    private static Dictionary<string, long> Changed(IReadOnlyDictionary<string, long> values, string key, long by)
    {
        var changed = values.ToDictionary();
        changed[key] = changed[key] + by;
        return changed;
    }
}
