using System.Diagnostics;
using System.Numerics;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Nethereum.Hex.HexConvertors.Extensions;
using Nethereum.Hex.HexTypes;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Rewards.Chain;
using Pipeline.Rewards.Epochs;
using Pipeline.Tests.Integration.Rewards;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Cli;

/// <summary>
/// `depin rewards verify` and `depin rewards claim` as a contributor runs them: the real CLI process against a real
/// anvil holding a root published through the chain client. The claim's proofs come from @openzeppelin/merkle-tree,
/// served in the rewards API's agreed shape by a stand-in (the API itself is built in parallel by the rewards stage).
/// </summary>
[Trait("Category", "Integration")]
public sealed class RewardsCommandsTests(AnvilChain chain) : IClassFixture<AnvilChain>, IAsyncLifetime
{
    private static readonly string Dll = Path.Combine(AppContext.BaseDirectory, "depin.dll");
    private static readonly RewardPolicy Policy = RewardPolicy.Load(Path.Combine(RepositoryTools.Root, "rewards", "policies", "v1.json"));
    private readonly string _folder = Directory.CreateTempSubdirectory("rewards-cli-").FullName;
    private readonly EthKey _contributor = EthKey.Generate();
    private WebApplication? _api;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_api is not null) await _api.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public async Task Verify_AFileThatRecomputesToTheRootAndHashOnChain_ExitsZero()
    {
        var (deployment, file, bytes) = await PublishedEpochAsync();

        var run = await DepinAsync(["rewards", "verify", "--epoch", "1", "--from", await WriteAsync(bytes), .. ChainArguments(deployment)]);

        Assert.True(run.ExitCode == 0, run.Output);
        Assert.Contains("Epoch 1 verified", run.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("MISMATCH", run.Output, StringComparison.Ordinal);
        Assert.NotNull(file.MerkleRoot);
    }

    [Fact]
    public async Task Verify_WithoutAFile_TakesTheFileAndTheChainFromTheApi()
    {
        var (deployment, file, _) = await PublishedEpochAsync();
        await StartApiAsync(deployment, file);

        var run = await DepinAsync("rewards", "verify", "--epoch", "1", "--api", _api!.Urls.Single());

        Assert.True(run.ExitCode == 0, run.Output);
        Assert.Contains($"distributor {deployment.Distributor.Address.ToLowerInvariant()}", run.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Verify_AFileWithOneAmountEdited_IsRefusedWithWhatDiffers()
    {
        var (deployment, _, bytes) = await PublishedEpochAsync();
        var json = JsonNode.Parse(bytes)!;
        var contributor = json["rewards"]!["contributors"]![0]!;
        contributor["cumulativeAmount"] = (BigInteger.Parse((string)contributor["cumulativeAmount"]!) + 1).ToString();

        var run = await DepinAsync(["rewards", "verify", "--epoch", "1", "--from", await WriteAsync(Encoding.UTF8.GetBytes(json.ToJsonString())), .. ChainArguments(deployment)]);

        Assert.True(run.ExitCode == 1, run.Output);
        Assert.Contains("Epoch 1 does not verify", run.Output, StringComparison.Ordinal);
        Assert.Contains("figures: the recorded amounts or scores differ", run.Output, StringComparison.Ordinal);
        Assert.Contains("the file's bytes hash to", run.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Verify_WhenTheChainHoldsAnotherRootForTheEpoch_ExitsOne()
    {
        var deployment = await chain.DeployAsync();
        var (file, bytes) = RewardFileFor(epoch: 1);
        var other = RewardFileFor(epoch: 1, extraAccepted: 500).File;
        Assert.NotEqual(file.MerkleRoot, other.MerkleRoot);
        await PublishAsync(deployment, other, Keccak256.Hash(bytes));

        var run = await DepinAsync(["rewards", "verify", "--epoch", "1", "--from", await WriteAsync(bytes), .. ChainArguments(deployment)]);

        Assert.True(run.ExitCode == 1, run.Output);
        Assert.Contains($"the chain holds root {other.MerkleRoot}", run.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Verify_WithoutAnEpochOrWithAMissingFile_IsAUsageErrorExitingTwo()
    {
        var deployment = await chain.DeployAsync();

        var noEpoch = await DepinAsync(["rewards", "verify", .. ChainArguments(deployment)]);
        var missing = await DepinAsync(["rewards", "verify", "--epoch", "1", "--from", Path.Combine(_folder, "nope.json"), .. ChainArguments(deployment)]);

        Assert.Equal(2, noEpoch.ExitCode);
        Assert.Contains("--epoch", noEpoch.Errors, StringComparison.Ordinal);
        Assert.Equal(2, missing.ExitCode);
        Assert.Contains("nope.json", missing.Errors, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Claim_WithTheProofFromTheApi_RaisesTheBalanceToTheCumulativeAmountThenHasNothingMoreToClaim()
    {
        var (deployment, file, _) = await PublishedEpochAsync();
        var cumulative = file.Rewards.Contributors.Single(c => c.Account == _contributor.Address).CumulativeAmount;
        await StartApiAsync(deployment, file);
        await FundForGasAsync(_contributor);
        var keyFile = await WriteAsync(Encoding.ASCII.GetBytes(_contributor.ToHex() + "\n"));

        var claim = await DepinAsync("rewards", "claim", "--key", keyFile, "--api", _api!.Urls.Single());

        Assert.True(claim.ExitCode == 0, claim.Output);
        Assert.Equal(cumulative, await chain.BalanceAsync(deployment, _contributor.Address.ToString()));
        Assert.Contains($"{cumulative} base units", claim.Output, StringComparison.Ordinal);
        var again = await DepinAsync("rewards", "claim", "--key", keyFile, "--api", _api.Urls.Single());
        Assert.True(again.ExitCode == 1, again.Output);
        Assert.Contains("Nothing to claim", again.Output, StringComparison.Ordinal);
        Assert.Equal(cumulative, await chain.BalanceAsync(deployment, _contributor.Address.ToString()));
    }

    [Fact]
    public async Task Claim_WithAnAlteredProof_ReportsTheContractsInvalidProofInWordsAndPaysNothing()
    {
        var (deployment, file, _) = await PublishedEpochAsync();
        await StartApiAsync(deployment, file, alterProof: true);
        await FundForGasAsync(_contributor);

        var claim = await DepinAsync("rewards", "claim", "--key", _contributor.ToHex(), "--api", _api!.Urls.Single());

        Assert.True(claim.ExitCode == 1, claim.Output);
        Assert.Contains("the proof does not match the distributor's current root", claim.Output, StringComparison.Ordinal);
        Assert.Equal(0, await chain.BalanceAsync(deployment, _contributor.Address.ToString()));
    }

    /// <summary>Fresh contracts with epoch 1's root and content hash published by the operator.</summary>
    private async Task<(ChainDeployment Deployment, RewardFile File, byte[] Bytes)> PublishedEpochAsync()
    {
        var deployment = await chain.DeployAsync();
        var (file, bytes) = RewardFileFor(epoch: 1);
        await PublishAsync(deployment, file, Keccak256.Hash(bytes));
        return (deployment, file, bytes);
    }

    private Task PublishAsync(ChainDeployment deployment, RewardFile file, byte[] contentHash) =>
        chain.Operator.SendAsync(deployment.Distributor.Address, new PublishRootFunction
        {
            Epoch = (ulong)file.Rewards.Epoch,
            Root = file.MerkleRoot!.HexToByteArray(),
            ContentHash = contentHash,
            TotalOwed = file.Rewards.Contributors.Aggregate(BigInteger.Zero, (sum, c) => sum + c.CumulativeAmount),
        });

    /// <summary>An epoch of three vehicles: two owned by the test's contributor, one by someone else.</summary>
    private (RewardFile File, byte[] Bytes) RewardFileFor(long epoch, long extraAccepted = 0)
    {
        var someone = EthKey.FromSeed("rewards-cli-other-owner"u8).Address;
        var devices = Enumerable.Range(0, 3).Select(i => EthKey.FromSeed(Encoding.UTF8.GetBytes($"rewards-cli-device-{i}")).Address).ToList();
        var inputs = new EpochInputs(
            epoch,
            [.. devices.Select((d, i) => new DeviceEpochQuality(d, DeviceKind.Vehicle, 1000 + i * 700 + extraAccepted, i, 900_000, 1_000_000, 0, new Dictionary<string, long>()))],
            [],
            [new DeviceOwner(devices[0], _contributor.Address), new DeviceOwner(devices[1], _contributor.Address), new DeviceOwner(devices[2], someone)],
            [new DeviceSales(devices[0], 300, 42)]);
        var file = RewardFile.Create(Policy, inputs, new Dictionary<EthAddress, BigInteger>());
        return (file, file.ToCanonicalJson());
    }

    /// <summary>
    /// Serves GET /v1/chain, GET /v1/rewards/epochs/{epoch}/file and GET /v1/rewards/contributors/{address}/proof as the
    /// rewards API contract has them, the proof built by @openzeppelin/merkle-tree (with one byte flipped when asked).
    /// </summary>
    private async Task StartApiAsync(ChainDeployment deployment, RewardFile file, bool alterProof = false)
    {
        var leaves = file.Rewards.Contributors.Select(c => (c.Account.ToLowerHex(), c.CumulativeAmount.ToString())).ToList();
        var tree = OpenZeppelinMerkleTree.Build([leaves]).Single();
        Assert.Equal(file.MerkleRoot, tree.Root);
        var index = leaves.FindIndex(l => l.Item1 == _contributor.Address.ToLowerHex());
        var proof = tree.Proofs[index].ToArray();
        if (alterProof) proof[0] = proof[0][..^1] + (proof[0][^1] == '0' ? '1' : '0');

        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        _api = builder.Build();
        _api.MapGet("/v1/chain", () => Results.Json(new
        {
            chainId = 31337,
            token = deployment.Token.Address.ToLowerInvariant(),
            distributor = deployment.Distributor.Address.ToLowerInvariant(),
            payments = deployment.Payments.Address.ToLowerInvariant(),
            treasury = chain.Treasury.Address.ToLowerInvariant(),
            confirmations = 0,
            rpcUrl = chain.Node.RpcUrl,
        }));
        _api.MapGet("/v1/rewards/epochs/{epoch:long}/file", (long epoch) =>
            epoch == file.Rewards.Epoch ? Results.Bytes(file.ToCanonicalJson(), "application/json") : Results.NotFound());
        _api.MapGet("/v1/rewards/contributors/{address}/proof", (string address) => address != _contributor.Address.ToLowerHex()
            ? Results.Problem(statusCode: 404, detail: "No published epoch has rewards for this address.", extensions: new Dictionary<string, object?> { ["reason"] = "no_rewards" })
            : Results.Json(new
            {
                epoch = file.Rewards.Epoch,
                account = leaves[index].Item1,
                cumulativeAmount = leaves[index].Item2,
                proof,
                merkleRoot = tree.Root,
                distributor = deployment.Distributor.Address.ToLowerInvariant(),
                chainId = 31337,
            }));
        await _api.StartAsync();
    }

    private Task FundForGasAsync(EthKey key) =>
        new AnvilSetBalance(chain.Operator.Web3.Client).SendRequestAsync(key.Address.ToString(), new HexBigInteger(BigInteger.Pow(10, 18)));

    private IEnumerable<string> ChainArguments(ChainDeployment deployment) =>
        ["--chain", chain.Node.RpcUrl, "--distributor", deployment.Distributor.Address, "--api", "http://127.0.0.1:9"];

    private async Task<string> WriteAsync(byte[] bytes)
    {
        var path = Path.Combine(_folder, Guid.NewGuid().ToString("N") + ".json");
        await File.WriteAllBytesAsync(path, bytes);
        return path;
    }

    private async Task<DepinRun> DepinAsync(params string[] arguments)
    {
        var start = new ProcessStartInfo("dotnet", [Dll, .. arguments]) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = _folder };
        start.Environment.Remove("PIPELINE_CHAIN");
        var run = new DepinRun(Process.Start(start)!);
        await run.WaitForExitAsync(TimeSpan.FromMinutes(2));
        return run;
    }
}
