using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Numerics;
using Marten;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Nethereum.Hex.HexConvertors.Extensions;
using Pipeline.Cli.Hosting;
using Pipeline.Core.Crypto;
using Pipeline.Core.Events;
using Pipeline.Infra.Hosting;
using Pipeline.Infra.Postgres;
using Pipeline.Marketplace;
using Pipeline.Marketplace.Accounts;
using Pipeline.Rewards.Chain;
using Pipeline.Rewards.Payments;

namespace Pipeline.Tests.Integration.Rewards;

/// <summary>
/// The payment follower against a real anvil and the real event store: a buyer pays through the Payments contract and
/// their marketplace balance (GET /v1/account on a real API host) rises once, across two followers at once, a restart
/// with a rewound cursor and a reorganisation. The follower runs in a host of its own, as the rewards stage runs it.
/// </summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class PaymentFollowerTests(StackFixture fixture, AnvilChain chain) : IClassFixture<AnvilChain>, IAsyncLifetime
{
    private const string Schema = "it_payment_follower";
    private static readonly BigInteger Token = BigInteger.Pow(10, 18);
    private readonly string _folder = Directory.CreateTempSubdirectory("payments-").FullName;
    private readonly List<IHost> _followers = [];
    private TestHost _api = null!;
    private string _operatorKey = "";

    public async Task InitializeAsync()
    {
        var operatorKeyFile = Path.Combine(_folder, "operator-key.sha256");
        _operatorKey = new OperatorKey(operatorKeyFile).CreateIfMissing()!;
        _api = await TestHost.StartAsync(fixture, Roles.Api, new Dictionary<string, string?>
        {
            ["Lake:Directory"] = Path.Combine(_folder, "lake"),
            ["Marketplace:OperatorKeyFile"] = operatorKeyFile,
        }, schema: Schema);
    }

    public async Task DisposeAsync()
    {
        foreach (var follower in _followers)
        {
            await follower.StopAsync();
            follower.Dispose();
        }
        await _api.DisposeAsync();
        Directory.Delete(_folder, recursive: true);
    }

    [Fact]
    public async Task Follower_TwoRunningWhileABuyerPays_CreditsTheBalanceOnceAfterTheConfirmations()
    {
        var deployment = await chain.DeployAsync();
        var (buyerId, key) = await CreateBuyerAsync();
        var payer = await FundedPayerAsync(deployment);
        var first = await StartFollowerAsync(deployment, confirmations: 2);
        var second = await StartFollowerAsync(deployment, confirmations: 2);

        var paid = await payer.SendAsync(deployment.Payments.Address, new PayFunction { BuyerId = buyerId.HexToByteArray(), Amount = 5 * Token });
        await WaitUntilReadAsync(first, deployment, (long)paid.BlockNumber.Value - 2);
        Assert.Equal(0, await BalanceAsync(key));

        await chain.MineAsync(2);
        await WaitUntilReadAsync(first, deployment, (long)paid.BlockNumber.Value);
        Assert.Equal(500, await BalanceAsync(key)); // 5 tokens at 0.01 token per credit
        await chain.MineAsync(3);
        await WaitUntilReadAsync(second, deployment, (long)paid.BlockNumber.Value + 3);

        Assert.Equal(500, await BalanceAsync(key));
        var payment = Assert.Single(await PaymentsAsync(first, buyerId));
        Assert.Equal((31337L, paid.TransactionHash, 500L, (5 * Token).ToString()), (payment.ChainId, payment.TxHash, payment.Credits, payment.TokenAmount));
        Assert.Equal(payer.Address.ToLowerInvariant(), payment.Payer);
    }

    [Fact]
    public async Task Follower_RestartedWithItsCursorRewound_ReadsThePaymentAgainAndCreditsItOnce()
    {
        var deployment = await chain.DeployAsync();
        var (buyerId, key) = await CreateBuyerAsync();
        var payer = await FundedPayerAsync(deployment);
        var follower = await StartFollowerAsync(deployment, confirmations: 0);
        var paid = await payer.SendAsync(deployment.Payments.Address, new PayFunction { BuyerId = buyerId.HexToByteArray(), Amount = 2 * Token });
        await WaitUntilReadAsync(follower, deployment, (long)paid.BlockNumber.Value);
        Assert.Equal(200, await BalanceAsync(key));
        await follower.StopAsync();

        // As if the cursor's commit had been lost: it goes back to the deployment block.
        await using (var session = Store(follower).LightweightSession())
        {
            var cursor = await session.LoadAsync<PaymentsCursor>(PaymentsCursor.Key(31337, deployment.Payments.Address));
            Assert.True(cursor!.Cursor.NextBlock > paid.BlockNumber.Value);
            cursor.Cursor = LogCursor.StartAt(deployment.DeployedAtBlock);
            session.Store(cursor);
            await session.SaveChangesAsync();
        }
        var restarted = await StartFollowerAsync(deployment, confirmations: 0);
        await chain.MineAsync(1);
        await WaitUntilReadAsync(restarted, deployment, (long)paid.BlockNumber.Value + 1);

        Assert.Equal(200, await BalanceAsync(key));
        Assert.Single(await PaymentsAsync(restarted, buyerId));
        await using var query = Store(restarted).QuerySession();
        Assert.Single((await query.Events.FetchStreamAsync(buyerId)).Select(e => e.Data).OfType<PaymentReceived>());
    }

    [Fact]
    public async Task Follower_AcrossAReorganisation_NeverCreditsTheDroppedUnconfirmedPaymentAndCreditsTheNewBranchsOnce()
    {
        var deployment = await chain.DeployAsync();
        var (buyerId, key) = await CreateBuyerAsync();
        var payer = await FundedPayerAsync(deployment);
        var otherPayer = await FundedPayerAsync(deployment);
        var follower = await StartFollowerAsync(deployment, confirmations: 1);
        await WaitUntilReadAsync(follower, deployment, await HeadAsync() - 1);
        var snapshot = await new EvmSnapshot(chain.Operator.Web3.Client).SendRequestAsync();

        // A is confirmed and credited; B is mined but not yet confirmed when the chain reorganises.
        var signedA = await SignPaymentAsync(payer, deployment, buyerId, 3 * Token);
        var hashA = await SendRawAsync(signedA);
        await chain.MineAsync(1);
        await WaitUntilReadAsync(follower, deployment, await HeadAsync() - 1);
        Assert.Equal(300, await BalanceAsync(key));
        var hashB = await SendRawAsync(await SignPaymentAsync(payer, deployment, buyerId, 7 * Token));
        var blockB = (long)(await chain.Operator.WaitForReceiptAsync(hashB)).BlockNumber.Value;
        await WaitUntilReadAsync(follower, deployment, blockB - 1);
        Assert.Equal(300, await BalanceAsync(key));

        // The other branch: C where A was (below the cursor, so only a follower that steps back finds it), then A
        // again (the same signed transaction) one block later, and no B.
        Assert.True(await new EvmRevert(chain.Operator.Web3.Client).SendRequestAsync(snapshot));
        var hashC = await SendRawAsync(await SignPaymentAsync(otherPayer, deployment, buyerId, 1 * Token));
        Assert.Equal(hashA, await SendRawAsync(signedA));
        await chain.MineAsync(4);
        Assert.True(await HeadAsync() > blockB);
        await WaitUntilReadAsync(follower, deployment, await HeadAsync() - 1);

        Assert.Null(await chain.Operator.Web3.Eth.Transactions.GetTransactionReceipt.SendRequestAsync(hashB));
        Assert.Equal(400, await BalanceAsync(key));
        // A's record keeps the block it was first credited in.
        Assert.Equal(new[] { hashA, hashC }.Order(), (await PaymentsAsync(follower, buyerId)).Select(p => p.TxHash).Order());
    }

    [Fact]
    public async Task Follower_PaymentsForAnUnknownBuyerOrWorthLessThanACredit_AreKeptUnattributedAndCreditNobody()
    {
        var deployment = await chain.DeployAsync();
        var (buyerId, key) = await CreateBuyerAsync();
        var payer = await FundedPayerAsync(deployment);
        var follower = await StartFollowerAsync(deployment, confirmations: 0, contractFromSource: true);
        var stranger = Hex.Encode0x(Keccak256.Hash("no such buyer"u8.ToArray()));

        await payer.SendAsync(deployment.Payments.Address, new PayFunction { BuyerId = stranger.HexToByteArray(), Amount = Token });
        var last = await payer.SendAsync(deployment.Payments.Address, new PayFunction { BuyerId = buyerId.HexToByteArray(), Amount = Token / 100 - 1 });
        await WaitUntilReadAsync(follower, deployment, (long)last.BlockNumber.Value);

        Assert.Equal(0, await BalanceAsync(key));
        await using var query = Store(follower).QuerySession();
        var contract = deployment.Payments.Address.ToLowerInvariant();
        var unattributed = await query.Query<ChainPayment>().Where(p => p.Status == ChainPayment.Unattributed && p.Contract == contract).ToListAsync();
        Assert.Equal(
            new (string, string?, string)[] { (stranger, ChainPayment.UnknownBuyer, Token.ToString()), (buyerId, ChainPayment.BelowOneCredit, (Token / 100 - 1).ToString()) },
            unattributed.OrderBy(p => p.BlockNumber).Select(p => (p.BuyerId, p.Reason, p.TokenAmount)));
        Assert.Null(await query.Events.FetchStreamStateAsync(stranger));
        Assert.Empty((await query.Events.FetchStreamAsync(buyerId)).Select(e => e.Data).OfType<PaymentReceived>());
    }

    [Fact]
    public async Task Follower_APaymentThroughALookAlikeContractOfAWorthlessToken_CreditsNobody_WhileTheRealOneCredits()
    {
        // Anyone can deploy the same Payments bytecode over a token of their own and emit PaymentReceived for any buyer id.
        var real = await chain.DeployAsync();
        var lookAlike = await chain.DeployAsync();
        var (buyerId, key) = await CreateBuyerAsync();
        var follower = await StartFollowerAsync(real, confirmations: 0);

        var forger = await FundedPayerAsync(lookAlike);
        var forged = await forger.SendAsync(lookAlike.Payments.Address, new PayFunction { BuyerId = buyerId.HexToByteArray(), Amount = 50 * Token });
        var honest = await FundedPayerAsync(real);
        var paid = await honest.SendAsync(real.Payments.Address, new PayFunction { BuyerId = buyerId.HexToByteArray(), Amount = Token });
        await WaitUntilReadAsync(follower, real, Math.Max((long)forged.BlockNumber.Value, (long)paid.BlockNumber.Value));

        Assert.Equal(100, await BalanceAsync(key)); // the real token's payment only, 1 token = 100 credits
        await using var query = Store(follower).QuerySession();
        Assert.Equal([paid.TransactionHash], (await query.Events.FetchStreamAsync(buyerId)).Select(e => e.Data).OfType<PaymentReceived>().Select(p => p.TxHash));
    }

    /// <summary>
    /// A follower in a host of its own, the contract named in configuration (Chain:Payments) or, as for contracts the
    /// rewards stage deploys at run time, by a source the host registers.
    /// </summary>
    private async Task<IHost> StartFollowerAsync(ChainDeployment deployment, int confirmations, bool contractFromSource = false)
    {
        var configuration = new ConfigurationBuilder().AddConfiguration(fixture.Settings).AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["EventStore:Schema"] = Schema,
            ["Chain:RpcUrl"] = chain.Node.RpcUrl,
            ["Chain:Payments"] = contractFromSource ? null : deployment.Payments.Address,
            ["Chain:DeployedAtBlock"] = contractFromSource ? null : $"{deployment.DeployedAtBlock}",
            ["Payments:Confirmations"] = $"{confirmations}",
            ["Payments:PollInterval"] = "00:00:00.050",
        }).Build();
        var builder = Host.CreateEmptyApplicationBuilder(new());
        if (contractFromSource)
            builder.Services.AddSingleton<IPaymentsContractSource>(new KnownContract(new PaymentsContract(chain.Node.RpcUrl, deployment.Payments.Address, deployment.DeployedAtBlock)));
        builder.Services.AddLogging().AddEventStore(configuration).AddMarketplaceDocuments().AddPaymentFollower(configuration);
        var host = builder.Build();
        await host.StartAsync();
        _followers.Add(host);
        return host;
    }

    private static IDocumentStore Store(IHost follower) => follower.Services.GetRequiredService<IDocumentStore>();

    /// <summary>Waits until a follower's cursor has read (committed) up to <paramref name="block"/>.</summary>
    private static async Task WaitUntilReadAsync(IHost follower, ChainDeployment deployment, long block)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var id = PaymentsCursor.Key(31337, deployment.Payments.Address);
        while (true)
        {
            await using (var session = Store(follower).QuerySession())
            {
                if (await session.LoadAsync<PaymentsCursor>(id, timeout.Token) is { } cursor && cursor.Cursor.NextBlock > block) return;
            }
            await Task.Delay(20, timeout.Token);
        }
    }

    private static async Task<IReadOnlyList<ChainPayment>> PaymentsAsync(IHost follower, string buyerId)
    {
        await using var session = Store(follower).QuerySession();
        return await session.Query<ChainPayment>().Where(p => p.BuyerId == buyerId).ToListAsync();
    }

    private Task<string> SendRawAsync(string signed) => chain.Operator.Web3.Eth.Transactions.SendRawTransaction.SendRequestAsync(signed);

    private async Task<long> HeadAsync() => (long)(await chain.Operator.Web3.Eth.Blocks.GetBlockNumber.SendRequestAsync()).Value;

    private async Task<(string BuyerId, string Key)> CreateBuyerAsync()
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/buyers") { Content = JsonContent.Create(new { name = "paying buyer", credits = 0 }) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _operatorKey);
        using var response = await _api.Api.SendAsync(request);
        var created = await response.EnsureSuccessStatusCode().Content.ReadFromJsonAsync<CreatedBuyer>(ServiceDefaults.WireJson);
        return (created!.Buyer.Id, created.ApiKey);
    }

    private async Task<long> BalanceAsync(string key)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/account");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        using var response = await _api.Api.SendAsync(request);
        return (await response.EnsureSuccessStatusCode().Content.ReadFromJsonAsync<AccountView>(ServiceDefaults.WireJson))!.Balance;
    }

    /// <summary>An account holding 100 tokens that has approved the Payments contract to take them.</summary>
    private async Task<ChainClient> FundedPayerAsync(ChainDeployment deployment)
    {
        var payer = await chain.NewFundedAccountAsync();
        await chain.Treasury.SendAsync(deployment.Token.Address, new TransferFunction { To = payer.Address, Value = 100 * Token });
        await payer.SendAsync(deployment.Token.Address, new ApproveFunction { Spender = deployment.Payments.Address, Value = 100 * Token });
        return payer;
    }

    /// <summary>A signed pay transaction, not sent: the test sends the same bytes before and after the reorganisation.</summary>
    private static async Task<string> SignPaymentAsync(ChainClient payer, ChainDeployment deployment, string buyerId, BigInteger amount)
    {
        var nonce = await payer.Web3.Eth.Transactions.GetTransactionCount.SendRequestAsync(payer.Address, Nethereum.RPC.Eth.DTOs.BlockParameter.CreatePending());
        var message = new PayFunction { BuyerId = buyerId.HexToByteArray(), Amount = amount, FromAddress = payer.Address, Nonce = nonce.Value, Gas = 200_000 };
        return await payer.Web3.Eth.GetContractTransactionHandler<PayFunction>().SignTransactionAsync(deployment.Payments.Address, message);
    }

    private sealed class KnownContract(PaymentsContract contract) : IPaymentsContractSource
    {
        public Task<PaymentsContract> GetAsync(CancellationToken cancellation) => Task.FromResult(contract);
    }
}
