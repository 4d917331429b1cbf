using System.Globalization;
using System.Numerics;
using Nethereum.Util;

namespace Pipeline.Rewards.Payments;

/// <summary>
/// How the payment follower reads the Payments contract. Bound from "Payments"; the chain's endpoint, the contract's
/// address, the confirmations and the first block default to what the dev chain (or an operator) put under "Chain"
/// (<c>Chain:RpcUrl</c>, <c>Chain:Payments</c>, <c>Chain:Confirmations</c>, <c>Chain:DeployedAtBlock</c>).
/// </summary>
public sealed class PaymentsOptions
{
    public const string Section = "Payments";

    /// <summary>The chain's JSON-RPC endpoint.</summary>
    public string? RpcUrl { get; set; }

    /// <summary>The Payments contract's address; empty when the host registers an <see cref="IPaymentsContractSource"/> of the deployed one.</summary>
    public string? Contract { get; set; }

    /// <summary>Blocks on top of a payment's block before it is credited: deeper reorganisations than this are not undone.</summary>
    public int Confirmations { get; set; } = 2;

    /// <summary>The block to start from when no cursor is stored yet (the contract's deployment block).</summary>
    public long StartBlock { get; set; }

    /// <summary>How long the follower waits when a poll found nothing new.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Token base units (18 decimals) one marketplace credit costs, as a decimal integer: 10^16 = 0.01 token.</summary>
    public string TokenUnitsPerCredit { get; set; } = "10000000000000000";

    public BigInteger UnitsPerCredit => BigInteger.Parse(TokenUnitsPerCredit, NumberStyles.None, CultureInfo.InvariantCulture);

    public IEnumerable<string> Errors()
    {
        if (!Uri.TryCreate(RpcUrl, UriKind.Absolute, out var rpc) || rpc.Scheme is not ("http" or "https"))
            yield return $"Payments:RpcUrl (or Chain:RpcUrl) must be the chain's http(s) JSON-RPC endpoint; '{RpcUrl}' is not one.";
        if (!string.IsNullOrEmpty(Contract) && !AddressUtil.Current.IsValidEthereumAddressHexFormat(Contract))
            yield return $"Payments:Contract (or Chain:Payments) must be the Payments contract's 0x address; '{Contract}' is not one.";
        if (Confirmations < 0) yield return "Payments:Confirmations must be 0 or more.";
        if (StartBlock < 0) yield return "Payments:StartBlock must be 0 or more.";
        if (PollInterval <= TimeSpan.Zero) yield return "Payments:PollInterval must be positive.";
        if (!BigInteger.TryParse(TokenUnitsPerCredit, NumberStyles.None, CultureInfo.InvariantCulture, out var units) || units <= 0)
            yield return $"Payments:TokenUnitsPerCredit must be a positive whole number of token base units; '{TokenUnitsPerCredit}' is not one.";
    }
}
