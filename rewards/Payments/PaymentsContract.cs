using Microsoft.Extensions.Options;

namespace Pipeline.Rewards.Payments;

/// <summary>The Payments contract to follow: the chain's endpoint, its address, and where a follower without a cursor starts.</summary>
public sealed record PaymentsContract(string RpcUrl, string Address, long StartBlock);

/// <summary>
/// Where the Payments contract is, once it is known. Configuration names it (<see cref="ConfiguredPaymentsContract"/>,
/// the default); a host whose contracts are deployed at run time registers its own source before AddPaymentFollower.
/// The follower asks again after every failure, so a source may throw until the contract exists.
/// </summary>
public interface IPaymentsContractSource
{
    Task<PaymentsContract> GetAsync(CancellationToken cancellation);
}

/// <summary>The contract as Payments:Contract (or Chain:Payments) names it.</summary>
public sealed class ConfiguredPaymentsContract(IOptions<PaymentsOptions> options) : IPaymentsContractSource
{
    public Task<PaymentsContract> GetAsync(CancellationToken cancellation)
    {
        var settings = options.Value;
        return string.IsNullOrWhiteSpace(settings.Contract)
            ? throw new InvalidOperationException("No Payments contract to follow: set Payments:Contract (or Chain:Payments), or register a source of the deployed one.")
            : Task.FromResult(new PaymentsContract(settings.RpcUrl!, settings.Contract, settings.StartBlock));
    }
}
