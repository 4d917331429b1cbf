using System.Numerics;
using System.Text;
using System.Text.Json.Nodes;
using DuckDB.NET.Data;
using Pipeline.Core.Crypto;
using Pipeline.Rewards.Epochs;
using Pipeline.Tests.Support;
using static Pipeline.Tests.Unit.Rewards.EpochScenario;

namespace Pipeline.Tests.Unit.Rewards;

/// <summary>Reward files: computed again from themselves alone, their root OpenZeppelin's, their Parquet readable by DuckDB.</summary>
public sealed class RewardFileTests : IDisposable
{
    private readonly string _directory = Directory.CreateTempSubdirectory("reward-files-").FullName;

    public void Dispose() => Directory.Delete(_directory, recursive: true);

    [Fact]
    public void Write_ThenRead_RecomputesTheSameRootAndFiguresFromTheFileAlone()
    {
        var (file, _) = TwoEpochs(seed: 11);

        var read = RewardFile.Read(file.Write(_directory));
        var check = read.Recompute();

        Assert.True(check.Matches, string.Join("; ", check.Problems));
        Assert.Equal(file.MerkleRoot, check.RecomputedRoot);
        Assert.Equal(file.ContentHash(), Hex.Encode0x(Keccak256.Hash(File.ReadAllBytes(Path.Combine(_directory, $"epoch-{file.Rewards.Epoch}.json")))));
        Assert.Equal(DefaultPolicy.Hash, read.Rewards.PolicyHash);
    }

    [Fact]
    public void ParseAndRecompute_AFileWhoseAmountsOrInputsWereAltered_SayWhatDiffers()
    {
        var (file, _) = TwoEpochs(seed: 12);
        var json = JsonNode.Parse(file.ToCanonicalJson())!;
        json["rewards"]!["contributors"]![0]!["cumulativeAmount"] = (BigInteger.Parse((string)json["rewards"]!["contributors"]![0]!["cumulativeAmount"]!) + 1).ToString();
        var inflated = RewardFile.Parse(Encoding.UTF8.GetBytes(json.ToJsonString()));

        var inputs = JsonNode.Parse(file.ToCanonicalJson())!;
        inputs["inputs"]!["devices"]![0]!["accepted"] = 1;
        var altered = RewardFile.Parse(Encoding.UTF8.GetBytes(inputs.ToJsonString()));

        var amount = JsonNode.Parse(file.ToCanonicalJson())!;
        amount["rewards"]!["devices"]![0]!["amount"] = "1";
        var derived = Assert.Throws<InvalidDataException>(() => RewardFile.Parse(Encoding.UTF8.GetBytes(amount.ToJsonString())));
        Assert.Contains("canonical form", derived.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidDataException>(() => RewardFile.Parse(Encoding.UTF8.GetBytes(JsonNode.Parse(file.ToCanonicalJson())!.ToJsonString(new() { WriteIndented = true }))));

        Assert.False(inflated.Recompute().Matches);
        Assert.Contains(inflated.Recompute().Problems, p => p.StartsWith("figures", StringComparison.Ordinal));
        var check = altered.Recompute();
        Assert.False(check.Matches);
        Assert.Contains(check.Problems, p => p.StartsWith("merkle root", StringComparison.Ordinal));
        Assert.Contains(check.Problems, p => p.StartsWith("inputs hash", StringComparison.Ordinal));
    }

    [Fact]
    public void MerkleRoot_OfARewardFile_EqualsOpenZeppelinsForTheSameLeaves()
    {
        var (first, second) = TwoEpochs(seed: 13);

        var expected = OpenZeppelinMerkleTree.Build([.. new[] { first, second }.Select(f => f.Rewards.Contributors.Select(c => (c.Account.ToLowerHex(), c.CumulativeAmount.ToString())))]);

        Assert.Equal(expected[0].Root, first.MerkleRoot);
        Assert.Equal(expected[1].Root, second.MerkleRoot);
        Assert.True(second.Rewards.Contributors.Count > 3);
    }

    [Fact]
    public void Parquet_ReadBackByDuckDb_HoldsTheFilesRowsAndAmounts()
    {
        var (file, _) = TwoEpochs(seed: 14);
        file.Write(_directory);

        using var connection = new DuckDBConnection("DataSource=:memory:");
        connection.Open();
        var devices = Path.Combine(_directory, $"epoch-{file.Rewards.Epoch}.devices.parquet");
        var contributors = Path.Combine(_directory, $"epoch-{file.Rewards.Epoch}.contributors.parquet");

        Assert.Equal(file.Rewards.Devices.Count.ToString(), Scalar(connection, $"SELECT count(*) FROM '{devices}'"));
        Assert.Equal(Sum(file.Rewards.Devices.Select(d => d.Amount)), Scalar(connection, $"SELECT sum(CAST(amount AS HUGEINT)) FROM '{devices}'"));
        Assert.Equal(Sum(file.Rewards.Contributors.Select(c => c.CumulativeAmount)), Scalar(connection, $"SELECT sum(CAST(cumulative_amount AS HUGEINT)) FROM '{contributors}'"));
        Assert.Equal(file.MerkleRoot, Scalar(connection, $"SELECT DISTINCT merkle_root FROM '{contributors}'"));
        var penalised = file.Rewards.Devices.Count(d => d.PenaltyPpm > 0).ToString();
        Assert.Equal(penalised, Scalar(connection, $"SELECT count(*) FROM '{devices}' WHERE penalty_ppm > 0"));
    }

    [Fact]
    public void Parse_SomethingElse_IsAClearError()
    {
        var error = Assert.Throws<InvalidDataException>(() => RewardFile.Parse("""{"format":"depin-rewards/0"}"""u8));

        Assert.StartsWith("Not a reward file", error.Message, StringComparison.Ordinal);
    }

    /// <summary>Two consecutive random epochs of one fleet, the second's previous amounts taken from the first.</summary>
    private static (RewardFile First, RewardFile Second) TwoEpochs(int seed)
    {
        var scenario = EpochCalculatorTests.RandomScenario(new Random(seed));
        while (scenario.Inputs.Devices.Count < 25) scenario = EpochCalculatorTests.RandomScenario(new Random(++seed * 7919));
        var first = RewardFile.Create(DefaultPolicy, scenario.Inputs, new Dictionary<EthAddress, BigInteger>());
        var previous = first.Rewards.Contributors.ToDictionary(c => c.Account, c => c.CumulativeAmount);
        var second = RewardFile.Create(DefaultPolicy, EpochCalculatorTests.RandomScenario(new Random(seed + 1)).Inputs, previous);
        return (first, second);
    }

    private static string Sum(IEnumerable<BigInteger> values) => values.Aggregate(BigInteger.Zero, (s, v) => s + v).ToString();

    private static string Scalar(DuckDBConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToString(command.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture) ?? "";
    }
}
