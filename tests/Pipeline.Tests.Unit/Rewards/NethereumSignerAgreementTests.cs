using System.Text;
using Nethereum.Signer;
using Pipeline.Core.Crypto;

namespace Pipeline.Tests.Unit.Rewards;

/// <summary>Core's EIP-191 personal_sign (libsecp256k1 on the hot path) and Nethereum's EthereumMessageSigner agree both ways.</summary>
public sealed class NethereumSignerAgreementTests
{
    private static readonly EthereumMessageSigner Nethereum = new();

    [Fact]
    public void PersonalSign_RandomKeysAndMessages_NethereumRecoversCoresSignaturesAndCoreRecoversNethereums()
    {
        var random = new Random(191);
        for (var i = 0; i < 100; i++)
        {
            var key = EthKey.Generate();
            var nethereumKey = new EthECKey(key.ToHex());
            var message = RandomMessage(random);

            var coreSignature = key.SignPersonal(message);
            Assert.True(key.Address.ToString().Equals(Nethereum.EcRecover(message, Hex.Encode0x(coreSignature)), StringComparison.Ordinal),
                $"Nethereum did not recover core's signature of a {message.Length}-byte message");

            var nethereumSignature = Hex.Decode(Nethereum.Sign(message, nethereumKey));
            Assert.Equal(SignatureCheck.Valid, PersonalSign.TryRecover(message, nethereumSignature, out var signer));
            Assert.Equal(key.Address, signer);

            // Both sign deterministically (RFC 6979) with low s, so the very bytes agree.
            Assert.Equal(Hex.Encode0x(coreSignature), Hex.Encode0x(nethereumSignature));
        }
    }

    [Fact]
    public void PersonalSign_AMessageAlteredAfterSigning_RecoversAnotherAddressInNethereum()
    {
        var key = EthKey.Generate();
        var message = Encoding.UTF8.GetBytes("""{"device":"0x8ba1f109551bd432803012645ac136ddd64dba72","seq":1}""");
        var signature = Hex.Encode0x(key.SignPersonal(message));
        message[^2] = (byte)'2';

        Assert.NotEqual(key.Address.ToString(), Nethereum.EcRecover(message, signature));
    }

    /// <summary>Random bytes, or random text with characters beyond ASCII, of up to a few hundred bytes (empty included).</summary>
    private static byte[] RandomMessage(Random random)
    {
        if (random.Next(2) == 0)
        {
            var bytes = new byte[random.Next(0, 400)];
            random.NextBytes(bytes);
            return bytes;
        }
        var text = new StringBuilder();
        for (var n = random.Next(1, 80); n > 0; n--) text.Append(random.Next(4) switch { 0 => 'é', 1 => '☂', 2 => '東', _ => (char)random.Next(32, 127) });
        return Encoding.UTF8.GetBytes(text.ToString());
    }
}
