using System.Numerics;
using Pipeline.Core.Crypto;
using Pipeline.Rewards;
using Pipeline.Rewards.Epochs;
using Pipeline.Rewards.Stage;

namespace Pipeline.Tests.Unit.Rewards;

/// <summary>The rewards stage's settings refuse what cannot run, and its reward files are written whole.</summary>
public sealed class RewardsStageSettingsTests
{
    [Fact]
    public void RewardsOptions_BuiltInPolicy_IsTheRepositorysV1()
    {
        Assert.Empty(new RewardsOptions().Errors());
        Assert.Equal(EpochScenario.DefaultPolicy.Hash, new RewardsOptions().LoadPolicy().Hash);
    }

    [Fact]
    public void RewardsOptions_NegativeGraceOrMissingPolicy_AreNamed()
    {
        var errors = new RewardsOptions { Grace = TimeSpan.FromSeconds(-1), PollInterval = TimeSpan.Zero, Policy = "/nonexistent/policy.json" }.Errors();
        Assert.Contains("Rewards:Grace cannot be negative.", errors);
        Assert.Contains("Rewards:PollInterval must be positive.", errors);
        Assert.Contains(errors, e => e.StartsWith("Rewards:Policy:", StringComparison.Ordinal));
    }

    [Fact]
    public void ChainOptions_WithoutRpcUrlOrWithSomeAddresses_AreRefused()
    {
        var errors = new ChainOptions { Token = "0x5fbdb2315678afecb367f032d93f642f64180aa3", Confirmations = 0 }.Errors();
        Assert.Contains(errors, e => e.StartsWith("Chain:RpcUrl must name", StringComparison.Ordinal));
        Assert.Contains("Chain:Confirmations must be at least 1.", errors);
        Assert.Contains(errors, e => e.StartsWith("Chain:Token, Chain:Distributor and Chain:Payments go together", StringComparison.Ordinal));
        Assert.Empty(new ChainOptions { RpcUrl = "http://127.0.0.1:8545" }.Errors());
    }

    [Fact]
    public void ChainOptions_OperatorKey_IsAnvilsOnlyOnTheLocalChain()
    {
        Assert.Equal(Infra.Development.AnvilNode.DefaultAccountKey, new ChainOptions { Local = true }.ResolveOperatorKey());
        Assert.Throws<InvalidOperationException>(() => new ChainOptions { RpcUrl = "https://rpc.example" }.ResolveOperatorKey());
    }

    [Fact]
    public void RewardsOptions_Directory_IsPerEventStoreSchema()
    {
        Assert.Equal(Path.GetFullPath("/data/exports/rewards"), new RewardsOptions().ResolveDirectory("/data", "depin"));
        Assert.Equal(Path.GetFullPath("/data/exports/rewards-it_x"), new RewardsOptions().ResolveDirectory("/data", "it_x"));
    }

    [Fact]
    public void RewardFiles_Write_LeavesTheJsonAndParquetFilesAndNoStaging_AndReadsBackTheSameContentHash()
    {
        var folder = Directory.CreateTempSubdirectory("depin-reward-files-").FullName;
        try
        {
            var inputs = new EpochScenario(7).Device("car-a", "alice").Device("car-b", "bob", accepted: 10).Inputs;
            var file = RewardFile.Create(EpochScenario.DefaultPolicy, inputs, new Dictionary<EthAddress, BigInteger>());
            var files = new RewardFiles(folder);

            var path = files.Write(file);

            Assert.Equal(files.JsonPath(7), path);
            Assert.Equal(["epoch-7.contributors.parquet", "epoch-7.devices.parquet", "epoch-7.json"], Directory.GetFileSystemEntries(folder).Select(Path.GetFileName).Order(StringComparer.Ordinal));
            Assert.Equal(file.ContentHash(), RewardFile.Parse(files.ReadBytes(7)!).ContentHash());
            Assert.Null(files.ReadBytes(8));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
