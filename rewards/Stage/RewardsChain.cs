using System.Numerics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Nethereum.Util;
using Pipeline.Infra.Hosting;
using Pipeline.Infra.Postgres;
using Pipeline.Rewards.Chain;
using Pipeline.Rewards.Payments;

namespace Pipeline.Rewards.Stage;

/// <summary>The operator's client on the chain (a reading client, without a key, in the API) and the contracts there (deployed at <paramref name="DeployedAtBlock"/>, 0 when configured).</summary>
public sealed record ChainContext(ChainClient Operator, string Token, string Distributor, string Payments, string Treasury, long DeployedAtBlock)
{
    public long ChainId => (long)Operator.ChainId;
}

/// <summary>
/// Connects to the configured chain once it answers: the contracts as configured, or deployed once per chain and
/// remembered in <c>chain/deployment.json</c> in the data folder (one per event store schema) (<see cref="ChainDeployment.EnsureAsync"/>), with the
/// treasury's approval of the distributor, which pulls each root's new total from it. After any failure the next
/// caller connects afresh, so a restarted node is met with a fresh nonce.
/// Only the rewards stage deploys (<paramref name="deploys"/>; it holds the operator's key to publish roots anyway).
/// The API reads: without a key, the contracts as configured or as the rewards stage recorded them in the shared data
/// folder; until it has, the API's chain answers say so and the next request looks again.
/// </summary>
public sealed class RewardsChain(IOptions<ChainOptions> options, IOptions<RewardsOptions> rewards, IOptions<DataOptions> data, IOptions<EventStoreOptions> eventStore, ILogger<RewardsChain> logger, bool deploys)
{
    private readonly SemaphoreSlim _gate = new(1, 1);
    private ChainContext? _context;

    public ChainOptions Options => options.Value;

    public string DeploymentFile => Path.Combine(data.Value.FullPath, "chain", $"deployment{RewardsOptions.SchemaSuffix(eventStore.Value.Schema)}.json");

    public async Task<ChainContext> GetAsync(CancellationToken cancellation)
    {
        if (Volatile.Read(ref _context) is { } ready) return ready;
        await _gate.WaitAsync(cancellation);
        try
        {
            return _context ??= await ConnectAsync(cancellation);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Forgets the connection (after a failure): the next <see cref="GetAsync"/> asks the node again, nonce included.</summary>
    public void Reset() => Volatile.Write(ref _context, null);

    private async Task<ChainContext> ConnectAsync(CancellationToken cancellation)
    {
        var chain = options.Value;
        var treasury = rewards.Value.LoadPolicy().Treasury.ToLowerHex();
        var client = deploys
            ? await ChainClient.ConnectAsync(chain.RpcUrl!, chain.ResolveOperatorKey(), chain.ReceiptTimeout, cancellation)
            : await ChainClient.ConnectReadOnlyAsync(chain.RpcUrl!, cancellation);
        if (chain.HasAddresses) return new ChainContext(client, chain.Token!, chain.Distributor!, chain.Payments!, treasury, 0);
        if (!deploys)
        {
            var recorded = await ChainDeployment.RecordedAsync(client, treasury, DeploymentFile, cancellation)
                ?? throw new InvalidOperationException($"the contracts are not deployed on chain {client.ChainId} yet: the rewards stage deploys them and records them in {DeploymentFile} (or set Chain:Token, Chain:Distributor and Chain:Payments)");
            return new ChainContext(client, recorded.Token.Address, recorded.Distributor.Address, recorded.Payments.Address, treasury, recorded.DeployedAtBlock);
        }

        var deployment = await ChainDeployment.EnsureAsync(client, treasury, BigInteger.Parse(chain.Supply), DeploymentFile, cancellation);
        await ApproveDistributorAsync(client, deployment, treasury, cancellation);
        logger.LogInformation("Chain {ChainId} at {RpcUrl}: token {Token}, distributor {Distributor}, payments {Payments}",
            deployment.ChainId, chain.RpcUrl, deployment.Token.Address, deployment.Distributor.Address, deployment.Payments.Address);
        return new ChainContext(client, deployment.Token.Address, deployment.Distributor.Address, deployment.Payments.Address, treasury, deployment.DeployedAtBlock);
    }

    /// <summary>The treasury lets the distributor pull what roots owe, once: with its own key, or the operator's when it is the operator.</summary>
    private async Task ApproveDistributorAsync(ChainClient operatorClient, ChainDeployment deployment, string treasury, CancellationToken cancellation)
    {
        var allowance = await operatorClient.QueryAsync<AllowanceFunction, BigInteger>(deployment.Token.Address,
            new AllowanceFunction { Owner = treasury, Spender = deployment.Distributor.Address });
        if (allowance > BigInteger.Pow(2, 128)) return;
        var chain = options.Value;
        ChainClient? treasuryClient = !string.IsNullOrWhiteSpace(chain.TreasuryKey)
            ? await ChainClient.ConnectAsync(chain.RpcUrl!, chain.TreasuryKey, chain.ReceiptTimeout, cancellation)
            : operatorClient.Address.IsTheSameAddress(treasury) ? operatorClient : null;
        if (treasuryClient is null || !treasuryClient.Address.IsTheSameAddress(treasury))
        {
            logger.LogWarning("The treasury {Treasury} has not approved the distributor {Distributor} and no key for it is configured (Chain:TreasuryKey): publishing a root will revert with ERC20InsufficientAllowance until it does",
                treasury, deployment.Distributor.Address);
            return;
        }
        await treasuryClient.SendAsync(deployment.Token.Address, new ApproveFunction { Spender = deployment.Distributor.Address, Value = BigInteger.Pow(2, 256) - 1 }, cancellation);
        logger.LogInformation("The treasury {Treasury} approved the distributor {Distributor}", treasury, deployment.Distributor.Address);
    }
}

/// <summary>
/// The Payments contract the payment follower reads: the configured one (Payments:Contract or Chain:Payments, from
/// Chain:DeployedAtBlock), else the one this stage deployed, followed from its deployment block.
/// </summary>
public sealed class DeployedPaymentsContract(RewardsChain chain, IOptions<PaymentsOptions> payments) : IPaymentsContractSource
{
    public async Task<PaymentsContract> GetAsync(CancellationToken cancellation)
    {
        var configured = payments.Value;
        if (!string.IsNullOrWhiteSpace(configured.Contract)) return new PaymentsContract(configured.RpcUrl!, configured.Contract, configured.StartBlock);
        var deployed = await chain.GetAsync(cancellation);
        return new PaymentsContract(chain.Options.RpcUrl!, deployed.Payments, deployed.DeployedAtBlock);
    }
}
