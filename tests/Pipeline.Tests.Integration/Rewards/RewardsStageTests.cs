using System.Net.Http.Json;
using System.Numerics;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Nethereum.Hex.HexConvertors.Extensions;
using Pipeline.Core.Crypto;
using Pipeline.Core.Events;
using Pipeline.Infra.Development;
using Pipeline.Projections.Lake;
using Pipeline.Rewards.Chain;
using Pipeline.Rewards.Epochs;
using Pipeline.Rewards.Stage;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Rewards;

/// <summary>
/// Issue 14, end to end on the running pipeline: devices that behave and devices that do not send readings over two
/// one-minute epochs; the rewards stage closes each from the lake, the registry and the sales, writes its reward file
/// and publishes its root on anvil; a contributor claims with the API's proof.
/// </summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class RewardsStageTests(StackFixture fixture, AnvilChain chain) : IClassFixture<AnvilChain>, IAsyncLifetime
{
    private readonly string _data = Directory.CreateTempSubdirectory("depin-rewards-").FullName;

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync()
    {
        Directory.Delete(_data, recursive: true);
        return Task.CompletedTask;
    }

    [Fact]
    public async Task RewardsStage_HonestAndMisbehavingFleetOverTwoEpochs_PaysByTheFormula_PublishesRoots_AndAClaimPaysOnce()
    {
        await using var host = await RewardsStack.StartAsync(fixture, "it_rewards_e2e", _data, chain.Node.RpcUrl);
        var honest = new RewardedDevice(host, "honest");
        var spammer = new RewardedDevice(host, "spammer");
        var replayer = new RewardedDevice(host, "replayer");
        var equivocator = new RewardedDevice(host, "equivocator");
        var teleporter = new RewardedDevice(host, "teleporter");
        RewardedDevice[] fleet = [honest, spammer, replayer, equivocator, teleporter];

        // Epoch 1: everyone sends 10 good readings; the misbehaving ones also do what they are named for.
        var first = await RewardsStack.EpochWithRoomAsync(TimeSpan.FromSeconds(30));
        foreach (var device in fleet) await device.RegisterAsync();
        foreach (var device in fleet) await device.SendGoodAsync(10);
        for (var i = 0; i < 20; i++) await spammer.SendAsync(DateTimeOffset.UtcNow, RewardedDevice.Position(53.35, 900));               // out_of_range
        for (var i = 0; i < 10; i++) await replayer.SendAsync(DateTimeOffset.UtcNow.AddDays(-8), RewardedDevice.Position(53.35, 50));    // stale
        await equivocator.SendAsync(5, DateTimeOffset.UtcNow, RewardedDevice.Position(53.35, 99));                                       // seq_conflict
        await teleporter.SendAsync(DateTimeOffset.UtcNow, RewardedDevice.Position(54.35, 50));                                          // teleport
        // A buyer's sale of the honest device's rows, as the marketplace records it.
        await using (var session = host.Store.LightweightSession())
        {
            session.Events.Append("0x" + new string('b', 64), new DataSold(honest.Address, first, "vehicle_signals", 5, 10, "grant-1", "charge-1"));
            await session.SaveChangesAsync();
        }
        await honest.WaitForProcessorsAsync();
        Assert.Equal(first, RewardsStack.EpochAt(DateTimeOffset.UtcNow));

        // Epoch 2: the honest device and the spammer send again; cumulative amounts grow.
        var second = await RewardsStack.EpochWithRoomAsync(TimeSpan.FromMinutes(2));
        Assert.Equal(first + 1, second);
        await honest.SendGoodAsync(10);
        await spammer.SendGoodAsync(10);
        await honest.WaitForProcessorsAsync();

        var epoch1 = await RewardsStack.WaitForEpochAsync(host, first, "published");
        var epoch2 = await RewardsStack.WaitForEpochAsync(host, second, "published");

        // The formula's terms, as "explain my reward" gives them.
        var explained = new Dictionary<string, JsonElement>();
        foreach (var device in fleet)
            explained[device.Name] = (await host.Api.GetFromJsonAsync<JsonElement>($"/v1/rewards/contributors/{device.OwnerAddress}/epochs/{first}/explain")).GetProperty("devices").EnumerateArray().Single();
        Assert.Equal(0, Components(explained["honest"]).GetProperty("rejectionPenalty").GetInt64());
        Assert.Equal(1_000_000, Components(explained["honest"]).GetProperty("quality").GetInt64());
        Assert.Equal(10, explained["honest"].GetProperty("readingsCounted").GetInt64());
        Assert.Equal(20, explained["spammer"].GetProperty("rejectionsByReason").GetProperty("out_of_range").GetInt64());
        Assert.Equal(20 * 5_000, Components(explained["spammer"]).GetProperty("rejectionPenalty").GetInt64());
        Assert.Equal(10, explained["replayer"].GetProperty("rejectionsByReason").GetProperty("stale").GetInt64());
        Assert.Equal(500_000, Components(explained["replayer"]).GetProperty("timeliness").GetInt64());
        Assert.True(Components(explained["equivocator"]).GetProperty("equivocated").GetBoolean());
        Assert.Equal("0", explained["equivocator"].GetProperty("emissionShare").GetString());
        Assert.Equal(1, explained["teleporter"].GetProperty("rejectionsByReason").GetProperty("teleport").GetInt64());
        Assert.Equal(50_000, Components(explained["teleporter"]).GetProperty("rejectionPenalty").GetInt64());
        // The sale: 10 credits × 0.01 DPR × 70 % to the honest device's owner.
        Assert.Equal(5, explained["honest"].GetProperty("salesRows").GetInt64());
        Assert.Equal(BigInteger.Pow(10, 16) * 7, RewardsStack.Amount(explained["honest"], "salesShare"));

        var amounts = new Dictionary<string, BigInteger>();
        foreach (var device in fleet)
            amounts[device.Name] = RewardsStack.Amount(await host.Api.GetFromJsonAsync<JsonElement>($"/v1/rewards/contributors/{device.OwnerAddress}/epochs/{first}/explain"), "amount");
        Assert.All(fleet.Skip(1), device => Assert.True(amounts["honest"] > amounts[device.Name], $"honest {amounts["honest"]} ≤ {device.Name} {amounts[device.Name]}"));
        Assert.True(amounts["spammer"] > amounts["replayer"] && amounts["teleporter"] > amounts["replayer"] && amounts["replayer"] > 0);
        Assert.Equal(BigInteger.Zero, amounts["equivocator"]);

        var page = await host.Api.GetFromJsonAsync<JsonElement>($"/v1/rewards/epochs?before={second + 1}&limit=2");
        Assert.Equal([second, first], page.EnumerateArray().Select(e => e.GetProperty("epoch").GetInt64()));
        Assert.All(page.EnumerateArray(), e => Assert.Equal("published", e.GetProperty("status").GetString()));

        // Each reward file hashes to its content hash, recomputes to the same figures, and its root is OpenZeppelin's.
        var deployment = await host.Api.GetFromJsonAsync<JsonElement>("/v1/chain");
        var distributor = deployment.GetProperty("distributor").GetString()!;
        foreach (var epoch in new[] { epoch1, epoch2 })
        {
            var number = epoch.GetProperty("epoch").GetInt64();
            var bytes = await host.Api.GetByteArrayAsync($"/v1/rewards/epochs/{number}/file");
            Assert.Equal(epoch.GetProperty("contentHash").GetString(), Hex.Encode0x(Keccak256.Hash(bytes)));
            var file = RewardFile.Parse(bytes);
            Assert.True(file.Recompute().Matches);
            var openZeppelin = OpenZeppelinMerkleTree.Build([file.Rewards.Contributors.Select(c => (c.Account.ToLowerHex(), c.CumulativeAmount.ToString()))]).Single();
            Assert.Equal(epoch.GetProperty("merkleRoot").GetString(), openZeppelin.Root);
            Assert.Equal(openZeppelin.Root, (await chain.Operator.QueryAsync<RootOfFunction, byte[]>(distributor, new RootOfFunction { Epoch = (ulong)number })).ToHex(true));
            Assert.Equal(1, await RewardsStack.RootPublishedLogsAsync(chain.Operator, distributor, number));
        }

        // The honest owner claims with the API's proof (submitted by anyone); the balance is the cumulative amount.
        var proof = await host.Api.GetFromJsonAsync<JsonElement>($"/v1/rewards/contributors/{honest.OwnerAddress}/proof");
        // The latest published epoch: the second, or an empty one after it that carries the same leaves.
        Assert.True(proof.GetProperty("epoch").GetInt64() >= second);
        var cumulative = RewardsStack.Amount(proof, "cumulativeAmount");
        var contributor = await host.Api.GetFromJsonAsync<JsonElement>($"/v1/rewards/contributors/{honest.OwnerAddress}");
        Assert.Equal(cumulative, RewardsStack.Amount(contributor, "cumulative"));
        Assert.Equal(cumulative, RewardsStack.Amount(contributor, "claimable"));
        var claim = new ClaimFunction { Account = honest.OwnerAddress, CumulativeAmount = cumulative, Proof = [.. proof.GetProperty("proof").EnumerateArray().Select(p => p.GetString()!.HexToByteArray())] };
        var claimer = await chain.NewFundedAccountAsync();
        await claimer.SendAsync(distributor, claim);
        var token = deployment.GetProperty("token").GetString()!;
        Assert.Equal(cumulative, await Balance(token, honest.OwnerAddress));
        var again = await Assert.ThrowsAsync<ContractRevertedException>(() => claimer.SendAsync(distributor, new ClaimFunction { Account = claim.Account, CumulativeAmount = claim.CumulativeAmount, Proof = claim.Proof }));
        Assert.Equal("NothingToClaim", again.Error);
        contributor = await host.Api.GetFromJsonAsync<JsonElement>($"/v1/rewards/contributors/{honest.OwnerAddress}");
        Assert.Equal(cumulative, RewardsStack.Amount(contributor, "claimed"));
        Assert.Equal(BigInteger.Zero, RewardsStack.Amount(contributor, "claimable"));

        // The treasury holds the rest: the distributor pulled exactly what the latest root owes, less nothing else.
        var totalOwed = RewardFile.Parse(await host.Api.GetByteArrayAsync($"/v1/rewards/epochs/{second}/file")).Rewards.Contributors.Aggregate(BigInteger.Zero, (sum, c) => sum + c.CumulativeAmount);
        var treasury = deployment.GetProperty("treasury").GetString()!;
        Assert.Equal(AnvilChain.Supply - totalOwed, await Balance(token, treasury));
        Assert.Equal(totalOwed - cumulative, await Balance(token, distributor));

        var metrics = await host.Api.GetStringAsync("/metrics");
        Assert.Contains("pipeline_rewards_epochs_closed_total", metrics);
        Assert.Contains("pipeline_rewards_last_published_epoch", metrics);
        Assert.Contains("pipeline_rewards_publish_latency_seconds_count", metrics);

        // Determinism: the lake rebuilt from the event store gives the first epoch the same inputs, file and root.
        var lakeOptions = host.App.Services.GetRequiredService<IOptions<LakeOptions>>().Value;
        var (_, _, rebuilt) = await LakeRebuild.RunAsync(host.Lake, _data, lakeOptions, NullLogger.Instance, null, CancellationToken.None);
        EpochClosed closed;
        await using (var session = host.Store.QuerySession())
            closed = (EpochClosed)(await session.Events.FetchStreamAsync(RewardEpoch.StreamId(first))).First().Data;
        var inputs = await host.Create<EpochInputsReader>().ReadAsync(RewardsStack.Policy, closed, RewardsStack.EpochLength, new LakeSource(LakeRebuild.RebuildLake, rebuilt), CancellationToken.None);
        var again1 = RewardFile.Create(RewardsStack.Policy, inputs, new Dictionary<EthAddress, BigInteger>());
        Assert.Equal(epoch1.GetProperty("contentHash").GetString(), again1.ContentHash());
        Assert.Equal(epoch1.GetProperty("merkleRoot").GetString(), again1.MerkleRoot);
    }

    [Fact]
    public async Task RewardsStage_StoppedAfterSendingARootItDidNotRecord_RecordsTheChainsRootAndSendsNoOther()
    {
        const string Schema = "it_rewards_crash";
        // The first run computes but cannot reach a chain: nothing is published.
        var offline = $"http://127.0.0.1:{TestHost.FreePort()}";
        long epoch;
        RewardsCalculated calculated;
        ChainClient operatorClient;
        string deploymentFile;
        await using (var host = await RewardsStack.StartAsync(fixture, Schema, _data, offline))
        {
            var device = new RewardedDevice(host, "car");
            epoch = await RewardsStack.EpochWithRoomAsync(TimeSpan.FromSeconds(20));
            await device.RegisterAsync();
            await device.SendGoodAsync(5);
            await device.WaitForProcessorsAsync();
            await RewardsStack.WaitForEpochAsync(host, epoch, "calculated");
            await using var session = host.Store.QuerySession();
            calculated = (await session.LoadAsync<RewardEpoch>(RewardEpoch.StreamId(epoch)))!.Rewards!;

            // What a stage killed right after its send leaves behind: the intent recorded, the root on chain, nothing more.
            operatorClient = await chain.Connect(AnvilNode.DefaultAccountKey);
            deploymentFile = host.App.Services.GetRequiredService<RewardsChain>().DeploymentFile;
            var chainDeployment = await ChainDeployment.EnsureAsync(operatorClient, RewardsStack.Policy.Treasury.ToLowerHex(), AnvilChain.Supply, deploymentFile);
            await operatorClient.SendAsync(chainDeployment.Token.Address, new ApproveFunction { Spender = chainDeployment.Distributor.Address, Value = AnvilChain.Supply });
            await using var writer = host.Store.LightweightSession();
            writer.Events.Append(RewardEpoch.StreamId(epoch), new RootPublishRequested(epoch, calculated.MerkleRoot!, calculated.ContentHash, calculated.TotalOwed, 31337, chainDeployment.Distributor.Address.ToLowerInvariant(), DateTimeOffset.UtcNow));
            await writer.SaveChangesAsync();
        }
        var deployment = JsonSerializer.Deserialize<ChainDeployment>(File.ReadAllText(deploymentFile), new JsonSerializerOptions(JsonSerializerDefaults.Web))!;
        var sent = await operatorClient.SendAsync(deployment.Distributor.Address, new PublishRootFunction
        {
            Epoch = (ulong)epoch,
            Root = calculated.MerkleRoot!.HexToByteArray(),
            ContentHash = calculated.ContentHash.HexToByteArray(),
            TotalOwed = BigInteger.Parse(calculated.TotalOwed),
        });

        // The next run finds the root on chain, records that transaction, and sends nothing.
        await using (var host = await RewardsStack.StartAsync(fixture, Schema, _data, chain.Node.RpcUrl, keepSchema: true))
        {
            var published = await RewardsStack.WaitForEpochAsync(host, epoch, "published");
            Assert.Equal(sent.TransactionHash, published.GetProperty("txHash").GetString());
            Assert.Equal(1, await RewardsStack.RootPublishedLogsAsync(chain.Operator, deployment.Distributor.Address, epoch));
            await using var session = host.Store.QuerySession();
            var events = await session.Events.FetchStreamAsync(RewardEpoch.StreamId(epoch));
            Assert.Equal(["EpochClosed", "RewardsCalculated", "RootPublishRequested", "RootPublished"], events.Select(e => e.Data.GetType().Name));
        }
    }

    [Fact]
    public async Task RewardsStage_ChainRestartedWhileTheRootWaitsToBeMined_EndsWithExactlyOneRoot()
    {
        var state = Path.Combine(_data, "anvil-state.json");
        var port = TestHost.FreePort();
        var node = await AnvilNode.StartAsync(new AnvilOptions(AnvilChain.AnvilExecutable, port, state));
        try
        {
            await using var host = await RewardsStack.StartAsync(fixture, "it_rewards_restart", _data, node.RpcUrl);
            var info = await host.Api.GetFromJsonAsync<JsonElement>("/v1/chain");
            var distributor = info.GetProperty("distributor").GetString()!;
            var operatorClient = await ChainClient.ConnectAsync(node.RpcUrl, AnvilNode.DefaultAccountKey);
            // Transactions now wait in the pool: the stage's publishing transaction is sent but not mined.
            await new EvmSetAutomine(operatorClient.Web3.Client).SendRequestAsync(false);

            var device = new RewardedDevice(host, "car");
            var epoch = await RewardsStack.EpochWithRoomAsync(TimeSpan.FromSeconds(20));
            await device.RegisterAsync();
            await device.SendGoodAsync(5);
            await device.WaitForProcessorsAsync();
            // The intent is recorded first, then the transaction is sent: wait until it is in the pool.
            await RewardsStack.WaitForEpochAsync(host, epoch, "publishing");
            var transactions = operatorClient.Web3.Eth.Transactions.GetTransactionCount;
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while ((await transactions.SendRequestAsync(operatorClient.Address, Nethereum.RPC.Eth.DTOs.BlockParameter.CreatePending())).Value
                   <= (await transactions.SendRequestAsync(operatorClient.Address, Nethereum.RPC.Eth.DTOs.BlockParameter.CreateLatest())).Value)
            {
                Assert.True(DateTime.UtcNow < deadline, "The publishing transaction did not reach the pool.");
                await Task.Delay(100);
            }

            // The node restarts from its saved state (mining again on every transaction) while the root waits.
            await node.DisposeAsync();
            node = await AnvilNode.StartAsync(new AnvilOptions(AnvilChain.AnvilExecutable, port, state));

            var published = await RewardsStack.WaitForEpochAsync(host, epoch, "published");
            var client = await ChainClient.ConnectAsync(node.RpcUrl, AnvilNode.DefaultAccountKey);
            Assert.Equal(published.GetProperty("merkleRoot").GetString(), (await client.QueryAsync<RootOfFunction, byte[]>(distributor, new RootOfFunction { Epoch = (ulong)epoch })).ToHex(true));
            Assert.Equal(1, await RewardsStack.RootPublishedLogsAsync(client, distributor, epoch));
        }
        finally
        {
            await node.DisposeAsync();
        }
    }

    private Task<BigInteger> Balance(string token, string account) =>
        chain.Operator.QueryAsync<BalanceOfFunction, BigInteger>(token, new BalanceOfFunction { Account = account });

    private static JsonElement Components(JsonElement device) => device.GetProperty("components");
}
