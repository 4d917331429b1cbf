using System.Globalization;
using System.Numerics;
using System.Text;
using Pipeline.Core.Crypto;

namespace Pipeline.Web.Contributor;

/// <summary>
/// The transaction a contributor's wallet sends to claim: RewardsDistributor.claim(address account, uint256
/// cumulativeAmount, bytes32[] proof), ABI-encoded here so the page's script only hands it to the wallet.
/// </summary>
public static class ClaimTransaction
{
    private static readonly byte[] Selector = Keccak256.Hash(Encoding.ASCII.GetBytes("claim(address,uint256,bytes32[])"))[..4];

    public static string CallData(string account, string cumulativeAmount, IReadOnlyList<string> proof)
    {
        var data = new List<byte>(4 + 32 * (4 + proof.Count));
        data.AddRange(Selector);
        data.AddRange(Word(Hex.Decode(account)));
        data.AddRange(Word(BigInteger.Parse(cumulativeAmount, NumberStyles.None, CultureInfo.InvariantCulture)));
        data.AddRange(Word(new BigInteger(3 * 32)));   // the dynamic array starts after the three head words
        data.AddRange(Word(new BigInteger(proof.Count)));
        foreach (var node in proof)
        {
            var bytes = Hex.Decode(node);
            if (bytes.Length != 32) throw new FormatException($"A proof node is 32 bytes; '{node}' is {bytes.Length}.");
            data.AddRange(bytes);
        }
        return Hex.Encode0x(data.ToArray());
    }

    private static byte[] Word(BigInteger value)
    {
        if (value.Sign < 0) throw new FormatException("ABI words here are unsigned.");
        return Word(value.ToByteArray(isUnsigned: true, isBigEndian: true));
    }

    private static byte[] Word(byte[] bigEndian)
    {
        if (bigEndian.Length > 32) throw new FormatException("A value wider than 32 bytes.");
        var word = new byte[32];
        bigEndian.CopyTo(word, 32 - bigEndian.Length);
        return word;
    }
}
