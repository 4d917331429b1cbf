using System.Net;
using System.Net.Http.Headers;
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
using Pipeline.Infra.Hosting;
using Pipeline.Marketplace;
using Pipeline.Marketplace.Accounts;
using Pipeline.Projections.Lake;
using Pipeline.Rewards.Chain;
using Pipeline.Rewards.Epochs;
using Pipeline.Rewards.Payments;
using Pipeline.Rewards.Stage;
using Pipeline.Tests.Integration.Projections;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Rewards;

/// <summary>
/// Issue 14, end to end on the running pipeline: devices that behave and devices that do not send readings over two
/// one-minute epochs while a buyer pays on chain and buys their rows; the rewards stage closes each epoch from the lake,
/// the registry and the sales, writes its reward file and publishes its root on anvil; a contributor claims with the
/// API's proof.
/// </summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class RewardsStageTests(StackFixture fixture, AnvilChain chain) : IClassFixture<AnvilChain>, IAsyncLifetime
{
    private static readonly BigInteger OneToken = BigInteger.Pow(10, 18);
    private readonly string _data = Directory.CreateTempSubdirectory("depin-rewards-").FullName;

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync()
    {
        Directory.Delete(_data, recursive: true);
        return Task.CompletedTask;
    }

    [Fact]
    public async Task RewardsStage_HonestAndMisbehavingFleetOverTwoEpochsWhileABuyerPaysOnChainAndBuysRows_PaysByTheFormula_PublishesRoots_AndAClaimPaysOnce()
    {
        var operatorKey = new OperatorKey(RewardsStack.OperatorKeyFile(_data)).CreateIfMissing()!;
        await using var host = await RewardsStack.StartAsync(fixture, "it_rewards_e2e", _data, chain.Node.RpcUrl);
        var honest = new RewardedDevice(host, "honest");
        var spammer = new RewardedDevice(host, "spammer");
        var replayer = new RewardedDevice(host, "replayer");
        var equivocator = new RewardedDevice(host, "equivocator");
        var teleporter = new RewardedDevice(host, "teleporter");
        RewardedDevice[] fleet = [honest, spammer, replayer, equivocator, teleporter];

        // A buyer the operator created pays one token on chain, naming their buyer id; once the payment is
        // confirmed the balance rises, once. The treasury funds the buyer's wallet and gets the token back.
        var deployment = await host.Api.GetFromJsonAsync<JsonElement>("/v1/chain");
        var token = deployment.GetProperty("token").GetString()!;
        var payments = deployment.GetProperty("payments").GetString()!;
        var (buyerId, buyerKey) = await CreateBuyerAsync(host, operatorKey);
        var wallet = await chain.NewFundedAccountAsync();
        // The stage's own operator client (the treasury here), so that its nonces stay in one hand.
        var treasuryClient = (await host.App.Services.GetRequiredService<RewardsChain>().GetAsync(CancellationToken.None)).Operator;
        await treasuryClient.SendAsync(token, new TransferFunction { To = wallet.Address, Value = OneToken });
        await wallet.SendAsync(token, new ApproveFunction { Spender = payments, Value = OneToken });
        var paid = (long)(await wallet.SendAsync(payments, new PayFunction { BuyerId = buyerId.HexToByteArray(), Amount = OneToken })).BlockNumber.Value;
        var paymentsOptions = host.App.Services.GetRequiredService<IOptions<PaymentsOptions>>().Value;
        var confirmations = paymentsOptions.Confirmations;
        Assert.True(confirmations > 0);
        await WaitForPaymentsReadAsync(host, payments, paid - confirmations);
        Assert.Equal(0, (await AccountAsync(host, buyerKey)).Balance);
        await chain.MineAsync(confirmations);
        await WaitForPaymentsReadAsync(host, payments, paid);
        var credits = (long)(OneToken / paymentsOptions.UnitsPerCredit);
        Assert.Equal(credits, (await AccountAsync(host, buyerKey)).Balance);
        await chain.MineAsync(2);
        await WaitForPaymentsReadAsync(host, payments, paid + 2);
        Assert.Equal(credits, (await AccountAsync(host, buyerKey)).Balance);
        await using (var session = host.Store.QuerySession())
            Assert.Single((await session.Events.FetchStreamAsync(buyerId)).Select(e => e.Data).OfType<PaymentReceived>());

        // Epoch 1: everyone sends 10 good readings; the misbehaving ones also do what they are named for.
        var first = await RewardsStack.EpochWithRoomAsync(TimeSpan.FromSeconds(35));
        foreach (var device in fleet) await device.RegisterAsync();
        foreach (var device in fleet) await device.SendGoodAsync(10);
        for (var i = 0; i < 20; i++) await spammer.SendAsync(DateTimeOffset.UtcNow, RewardedDevice.Position(53.35, 900));               // out_of_range
        for (var i = 0; i < 10; i++) await replayer.SendAsync(DateTimeOffset.UtcNow.AddDays(-8), RewardedDevice.Position(53.35, 50));    // stale
        await equivocator.SendAsync(5, DateTimeOffset.UtcNow, RewardedDevice.Position(53.35, 99));                                       // seq_conflict
        await teleporter.SendAsync(DateTimeOffset.UtcNow, RewardedDevice.Position(54.35, 50));                                          // teleport
        await honest.WaitForProcessorsAsync();

        // The buyer spends the paid credits on a grant over the honest device's rows of this epoch and queries them
        // once the lake has them: the query's charge records the sale (SalesAttributed) in this epoch.
        await LakeProbe.WaitForLakeAsync(host);
        var epochStart = DateTimeOffset.UnixEpoch + RewardsStack.EpochLength * first;
        var grant = await SendAsync(host, HttpMethod.Post, "/v1/grants", buyerKey, new
        {
            dataset = "vehicle_signals", from = epochStart, until = epochStart + RewardsStack.EpochLength,
            devices = new[] { honest.Address }, rowQuota = 10, expiresAt = DateTimeOffset.UtcNow.AddDays(1),
        });
        Assert.True(grant.StatusCode == HttpStatusCode.Created, await grant.Content.ReadAsStringAsync());
        var grantId = (await grant.Content.ReadFromJsonAsync<GrantView>(ServiceDefaults.WireJson))!.Id;
        var query = await SendAsync(host, HttpMethod.Post, "/v1/query", buyerKey, new { grant = grantId, sql = "SELECT device, device_time, reading_id FROM vehicle_signals" });
        Assert.True(query.StatusCode == HttpStatusCode.OK, await query.Content.ReadAsStringAsync());
        var rows = (await query.Content.ReadFromJsonAsync<JsonElement>()).EnumerateArray().ToList();
        Assert.Equal(10, rows.Count);
        Assert.All(rows, row => Assert.Equal(honest.Address, row.GetProperty("device").GetString()));
        var chargeId = query.Headers.GetValues("X-Charge-Id").Single();
        SalesAttributed sale;
        await using (var session = host.Store.QuerySession())
            sale = Assert.Single((await session.Events.FetchStreamAsync(buyerId)).Select(e => e.Data).OfType<SalesAttributed>());
        Assert.Equal(chargeId, sale.ChargeId);
        var sold = sale.Lines;
        Assert.NotEmpty(sold);
        Assert.All(sold, line => Assert.Equal((honest.Address, first), (line.Device, line.Epoch)));
        Assert.Equal(rows.Count, sold.Sum(line => line.Rows));
        Assert.True(sold.Sum(line => line.Credits) > 0);
        // The sale is recorded before the epoch ends, so its close counts it.
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
        // The sale, by the formula: S = ⌊Σcredits × baseUnitsPerCredit × contributorSharePpm / 10⁶⌋, all of it the
        // honest device's (the only one sold): ⌊S × its credits / Σcredits⌋.
        var soldCredits = sold.Aggregate(BigInteger.Zero, (sum, sale) => sum + sale.Credits);
        var salesShare = soldCredits * RewardsStack.Policy.Sales.BaseUnitsPerCredit * RewardsStack.Policy.Sales.ContributorSharePpm / 1_000_000;
        Assert.Equal(sold.Sum(sale => sale.Rows), explained["honest"].GetProperty("salesRows").GetInt64());
        var honestCredits = sold.Where(sale => sale.Device == honest.Address).Aggregate(BigInteger.Zero, (sum, sale) => sum + sale.Credits);
        Assert.Equal(salesShare * honestCredits / soldCredits, RewardsStack.Amount(explained["honest"], "salesShare"));
        Assert.All(fleet.Skip(1), device => Assert.Equal(BigInteger.Zero, RewardsStack.Amount(explained[device.Name], "salesShare")));

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
        Assert.Equal(cumulative, await Balance(token, honest.OwnerAddress));
        var again = await Assert.ThrowsAsync<ContractRevertedException>(() => claimer.SendAsync(distributor, new ClaimFunction { Account = claim.Account, CumulativeAmount = claim.CumulativeAmount, Proof = claim.Proof }));
        Assert.Equal("NothingToClaim", again.Error);
        contributor = await host.Api.GetFromJsonAsync<JsonElement>($"/v1/rewards/contributors/{honest.OwnerAddress}");
        Assert.Equal(cumulative, RewardsStack.Amount(contributor, "claimed"));
        Assert.Equal(BigInteger.Zero, RewardsStack.Amount(contributor, "claimable"));

        // The treasury holds the rest (the buyer's token came from it and went back to it through Payments): the
        // distributor pulled exactly what the latest root owes, less nothing else.
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

    /// <summary>A buyer with no credits, created by the operator; their id (the buyer id they pay with) and API key.</summary>
    private static async Task<(string Id, string Key)> CreateBuyerAsync(TestHost host, string operatorKey)
    {
        var response = await SendAsync(host, HttpMethod.Post, "/v1/buyers", operatorKey, new { name = "paying buyer", credits = 0 });
        var created = await response.EnsureSuccessStatusCode().Content.ReadFromJsonAsync<CreatedBuyer>(ServiceDefaults.WireJson);
        return (created!.Buyer.Id, created.ApiKey);
    }

    private static async Task<AccountView> AccountAsync(TestHost host, string key) =>
        (await (await SendAsync(host, HttpMethod.Get, "/v1/account", key)).EnsureSuccessStatusCode().Content.ReadFromJsonAsync<AccountView>(ServiceDefaults.WireJson))!;

    private static async Task<HttpResponseMessage> SendAsync(TestHost host, HttpMethod method, string path, string key, object? body = null)
    {
        using var request = new HttpRequestMessage(method, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        if (body is not null) request.Content = JsonContent.Create(body);
        return await host.Api.SendAsync(request);
    }

    /// <summary>Waits until the stage's payment follower has read (and committed) the Payments logs up to <paramref name="block"/>.</summary>
    private async Task WaitForPaymentsReadAsync(TestHost host, string payments, long block)
    {
        var chainId = (long)chain.Operator.ChainId;
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            await using (var session = host.Store.QuerySession())
            {
                if (await session.LoadAsync<PaymentsCursor>(PaymentsCursor.Key(chainId, payments)) is { } cursor && cursor.Cursor.NextBlock > block) return;
            }
            Assert.True(DateTime.UtcNow < deadline, $"The payment follower did not read block {block} in time.");
            await Task.Delay(50);
        }
    }

    private Task<BigInteger> Balance(string token, string account) =>
        chain.Operator.QueryAsync<BalanceOfFunction, BigInteger>(token, new BalanceOfFunction { Account = account });

    private static JsonElement Components(JsonElement device) => device.GetProperty("components");
}
