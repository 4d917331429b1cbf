using Pipeline.Core.Crypto;
using Pipeline.Core.Registry;

namespace Pipeline.Registry;

/// <summary>
/// Which network this deployment is, bound from the "Network" section: registry messages are EIP-712 typed data signed
/// for the domain {name, version, chainId} built from it, and a message signed for any other domain is refused.
/// </summary>
public sealed class NetworkOptions
{
    public const string Section = "Network";

    /// <summary>The EIP-712 domain name wallets show; two networks on one chain tell themselves apart by it.</summary>
    public string Name { get; set; } = RegistryDomain.DefaultName;

    /// <summary>The EVM chain the network's rewards are paid on (31337, anvil's, for development).</summary>
    public ulong ChainId { get; set; } = RegistryDomain.DevChainId;

    public Eip712Domain Domain => new(Name, RegistryDomain.Version, ChainId);
}
