using System.Numerics;
using Nethereum.Hex.HexTypes;
using Pipeline.Core.Crypto;
using Pipeline.Infra.Development;
using Pipeline.Rewards.Chain;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Rewards;

/// <summary>
/// An anvil of its own for one test class (a free port, its own chain) with clients for anvil's funded default
/// accounts: the operator who deploys and publishes, the treasury that holds the supply, and a buyer.
/// </summary>
public sealed class AnvilChain : IAsyncLifetime
{
    // Keys of anvil's default accounts 1 and 2 (its well-known test mnemonic); account 0 is AnvilNode.DefaultAccountKey.
    public const string TreasuryKey = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
    public const string BuyerKey = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";

    public static readonly BigInteger Supply = BigInteger.Pow(10, 18) * 1_000_000_000;

    private AnvilNode? _node;
    private ChainClient? _operator;
    private ChainClient? _treasury;
    private ChainClient? _buyer;

    public AnvilNode Node => _node ?? throw new InvalidOperationException("anvil is not started.");
    public ChainClient Operator => _operator ?? throw new InvalidOperationException("anvil is not started.");
    public ChainClient Treasury => _treasury ?? throw new InvalidOperationException("anvil is not started.");
    public ChainClient Buyer => _buyer ?? throw new InvalidOperationException("anvil is not started.");

    public static string AnvilExecutable => AnvilNode.FindInTools(RepositoryTools.ToolsFolder);

    public async Task InitializeAsync()
    {
        _node = await AnvilNode.StartAsync(new AnvilOptions(AnvilExecutable));
        _operator = await Connect(AnvilNode.DefaultAccountKey);
        _treasury = await Connect(TreasuryKey);
        _buyer = await Connect(BuyerKey);
    }

    public async Task DisposeAsync()
    {
        if (_node is not null) await _node.DisposeAsync();
    }

    /// <summary>Fresh contracts for one test (a distributor has one epoch sequence), the distributor approved by the treasury.</summary>
    public async Task<ChainDeployment> DeployAsync()
    {
        var record = Path.Combine(Path.GetTempPath(), $"chain-{Guid.NewGuid():N}.json");
        try
        {
            var deployment = await ChainDeployment.EnsureAsync(Operator, Treasury.Address, Supply, record);
            await Treasury.SendAsync(deployment.Token.Address, new ApproveFunction { Spender = deployment.Distributor.Address, Value = Supply });
            return deployment;
        }
        finally
        {
            File.Delete(record);
        }
    }

    /// <summary>A client for <paramref name="key"/>; anvil mines at once, so a receipt that takes seconds means a bug, not a slow chain.</summary>
    public Task<ChainClient> Connect(string key) => ChainClient.ConnectAsync(Node.RpcUrl, key, TimeSpan.FromSeconds(20));

    public Task<BigInteger> BalanceAsync(ChainDeployment deployment, string account) =>
        Operator.QueryAsync<BalanceOfFunction, BigInteger>(deployment.Token.Address, new BalanceOfFunction { Account = account });

    public async Task MineAsync(int blocks)
    {
        for (var i = 0; i < blocks; i++) await new EvmMine(Operator.Web3.Client).SendRequestAsync();
    }

    /// <summary>A new account with one ether for gas.</summary>
    public async Task<ChainClient> NewFundedAccountAsync(TimeSpan? receiptTimeout = null)
    {
        var client = await ChainClient.ConnectAsync(Node.RpcUrl, EthKey.Generate().ToHex(), receiptTimeout ?? TimeSpan.FromSeconds(20));
        await new AnvilSetBalance(Operator.Web3.Client).SendRequestAsync(client.Address, new HexBigInteger(BigInteger.Pow(10, 18)));
        return client;
    }
}
