using System.Numerics;
using Nethereum.Contracts;
using Pipeline.Core.Crypto;
using Pipeline.Rewards.Chain;
using Pipeline.Web.Contributor;

namespace Pipeline.Tests.Integration.Web;

/// <summary>The claim's calldata the web app hands to a wallet, against Nethereum's ABI encoding of the same call (pure; no servers).</summary>
public sealed class ClaimTransactionTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(5)]
    public void ClaimCallData_ForAProofOfAnyLength_IsWhatNethereumEncodes(int proofLength)
    {
        var account = EthKey.Generate().Address.ToLowerHex();
        var amount = BigInteger.Parse("123456789012345678901234567890");
        var proof = Enumerable.Range(1, proofLength).Select(i => Keccak256.Hash([(byte)i])).ToList();

        var ours = ClaimTransaction.CallData(account, amount.ToString(), proof.Select(p => Hex.Encode0x(p)).ToList());

        var theirs = new ClaimFunction { Account = account, CumulativeAmount = amount, Proof = proof }.GetCallData();
        Assert.Equal(Hex.Encode0x(theirs), ours);
    }

    [Fact]
    public void ClaimCallData_WithAProofNodeThatIsNot32Bytes_IsRefused() =>
        Assert.Throws<FormatException>(() => ClaimTransaction.CallData(EthKey.Generate().Address.ToLowerHex(), "1", ["0x1234"]));
}
