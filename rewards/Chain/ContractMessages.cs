using System.Numerics;
using Nethereum.ABI.FunctionEncoding.Attributes;
using Nethereum.Contracts;

namespace Pipeline.Rewards.Chain;

// Typed Nethereum messages for the contracts in infra/contracts: Nethereum encodes and decodes them from these
// attributes, so no ABI encoding is written by hand. Names and types follow the Solidity sources exactly.

public sealed class RewardTokenDeployment() : ContractDeploymentMessage(CompiledContracts.RewardToken.Bytecode)
{
    [Parameter("address", "treasury", 1)] public string Treasury { get; set; } = "";
    [Parameter("uint256", "supply", 2)] public BigInteger Supply { get; set; }
}

public sealed class RewardsDistributorDeployment() : ContractDeploymentMessage(CompiledContracts.RewardsDistributor.Bytecode)
{
    [Parameter("address", "token_", 1)] public string Token { get; set; } = "";
    [Parameter("address", "treasury_", 2)] public string Treasury { get; set; } = "";
    [Parameter("address", "operator", 3)] public string Operator { get; set; } = "";
}

public sealed class PaymentsDeployment() : ContractDeploymentMessage(CompiledContracts.Payments.Bytecode)
{
    [Parameter("address", "token_", 1)] public string Token { get; set; } = "";
    [Parameter("address", "treasury_", 2)] public string Treasury { get; set; } = "";
}

// RewardToken (ERC-20)

[Function("transfer", "bool")]
public sealed class TransferFunction : FunctionMessage
{
    [Parameter("address", "to", 1)] public string To { get; set; } = "";
    [Parameter("uint256", "value", 2)] public BigInteger Value { get; set; }
}

[Function("approve", "bool")]
public sealed class ApproveFunction : FunctionMessage
{
    [Parameter("address", "spender", 1)] public string Spender { get; set; } = "";
    [Parameter("uint256", "value", 2)] public BigInteger Value { get; set; }
}

[Function("allowance", "uint256")]
public sealed class AllowanceFunction : FunctionMessage
{
    [Parameter("address", "owner", 1)] public string Owner { get; set; } = "";
    [Parameter("address", "spender", 2)] public string Spender { get; set; } = "";
}

[Function("balanceOf", "uint256")]
public sealed class BalanceOfFunction : FunctionMessage
{
    [Parameter("address", "account", 1)] public string Account { get; set; } = "";
}

[Function("totalSupply", "uint256")]
public sealed class TotalSupplyFunction : FunctionMessage;

[Event("Transfer")]
public sealed class TransferEventDto : IEventDTO
{
    [Parameter("address", "from", 1, true)] public string From { get; set; } = "";
    [Parameter("address", "to", 2, true)] public string To { get; set; } = "";
    [Parameter("uint256", "value", 3, false)] public BigInteger Value { get; set; }
}

// RewardsDistributor

[Function("publishRoot")]
public sealed class PublishRootFunction : FunctionMessage
{
    [Parameter("uint64", "epoch", 1)] public ulong Epoch { get; set; }
    [Parameter("bytes32", "root", 2)] public byte[] Root { get; set; } = [];
    [Parameter("bytes32", "contentHash", 3)] public byte[] ContentHash { get; set; } = [];
    [Parameter("uint256", "totalOwed", 4)] public BigInteger TotalOwed { get; set; }
}

[Function("claim")]
public sealed class ClaimFunction : FunctionMessage
{
    [Parameter("address", "account", 1)] public string Account { get; set; } = "";
    [Parameter("uint256", "cumulativeAmount", 2)] public BigInteger CumulativeAmount { get; set; }
    [Parameter("bytes32[]", "proof", 3)] public List<byte[]> Proof { get; set; } = [];
}

[Function("claimed", "uint256")]
public sealed class ClaimedFunction : FunctionMessage
{
    [Parameter("address", "account", 1)] public string Account { get; set; } = "";
}

[Function("rootOf", "bytes32")]
public sealed class RootOfFunction : FunctionMessage
{
    [Parameter("uint64", "epoch", 1)] public ulong Epoch { get; set; }
}

[Function("contentHashOf", "bytes32")]
public sealed class ContentHashOfFunction : FunctionMessage
{
    [Parameter("uint64", "epoch", 1)] public ulong Epoch { get; set; }
}

[Function("currentRoot", "bytes32")]
public sealed class CurrentRootFunction : FunctionMessage;

[Function("currentEpoch", "uint64")]
public sealed class CurrentEpochFunction : FunctionMessage;

[Function("nextEpoch", "uint64")]
public sealed class NextEpochFunction : FunctionMessage;

[Function("totalFunded", "uint256")]
public sealed class TotalFundedFunction : FunctionMessage;

[Event("RootPublished")]
public sealed class RootPublishedEventDto : IEventDTO
{
    [Parameter("uint64", "epoch", 1, true)] public ulong Epoch { get; set; }
    [Parameter("bytes32", "root", 2, false)] public byte[] Root { get; set; } = [];
    [Parameter("bytes32", "contentHash", 3, false)] public byte[] ContentHash { get; set; } = [];
    [Parameter("uint256", "totalOwed", 4, false)] public BigInteger TotalOwed { get; set; }
    [Parameter("uint256", "funded", 5, false)] public BigInteger Funded { get; set; }
}

[Event("Claimed")]
public sealed class ClaimedEventDto : IEventDTO
{
    [Parameter("address", "account", 1, true)] public string Account { get; set; } = "";
    [Parameter("uint64", "epoch", 2, true)] public ulong Epoch { get; set; }
    [Parameter("uint256", "amount", 3, false)] public BigInteger Amount { get; set; }
    [Parameter("uint256", "cumulativeAmount", 4, false)] public BigInteger CumulativeAmount { get; set; }
}

// Payments

[Function("pay")]
public sealed class PayFunction : FunctionMessage
{
    [Parameter("bytes32", "buyerId", 1)] public byte[] BuyerId { get; set; } = [];
    [Parameter("uint256", "amount", 2)] public BigInteger Amount { get; set; }
}

[Event("PaymentReceived")]
public sealed class PaymentReceivedEventDto : IEventDTO
{
    [Parameter("bytes32", "buyerId", 1, true)] public byte[] BuyerId { get; set; } = [];
    [Parameter("address", "payer", 2, true)] public string Payer { get; set; } = "";
    [Parameter("uint256", "amount", 3, false)] public BigInteger Amount { get; set; }
}
