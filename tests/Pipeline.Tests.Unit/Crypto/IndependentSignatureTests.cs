using Pipeline.Tests.Support;
using System.Text;
using System.Text.Json;
using Pipeline.Core.Crypto;

namespace Pipeline.Tests.Unit.Crypto;

/// <summary>Signatures made by tools we did not write — foundry's cast and ethers — recover to the right address.</summary>
public sealed class IndependentSignatureTests
{
    private static readonly string[] Keys =
    [
        "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
        "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
        "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
        EthKey.FromSeed("independent-signature-tests"u8).ToHex(),
    ];

    private static readonly string[] Payloads =
    [
        """{"device":"0x8ba1f109551bd432803012645ac136ddd64dba72","seq":1042,"ts":"2026-11-23T19:00:00.123Z","kind":"vehicle","signals":{"Vehicle.Speed":54.2,"Vehicle.CurrentLocation.Latitude":52.37},"obd":["410C1AF8"]}""",
        """{"device":"0x8ba1f109551bd432803012645ac136ddd64dba72","seq":1,"ts":"2026-11-23T19:00:00Z","kind":"weather","signals":{"temperature":-3.5,"humidity":81}}""",
        "plain text with unicode: Zürich ☂ 東京",
        "",
    ];

    [Fact]
    public void CastWalletSign_SeveralKeysAndPayloads_RecoverToCastsAddress()
    {
        foreach (var key in Keys)
        {
            var address = EthAddress.Parse(RepositoryTools.Run(RepositoryTools.Cast, ["wallet", "address", "--private-key", key]));
            foreach (var payload in Payloads.Where(p => p.Length > 0))
            {
                var castSignature = RepositoryTools.Run(RepositoryTools.Cast, ["wallet", "sign", "--private-key", key, payload]);
                var message = Encoding.UTF8.GetBytes(payload);

                Assert.Equal(SignatureCheck.Valid, PersonalSign.TryRecover(message, Hex.Decode(castSignature), out var signer));
                Assert.Equal(address, signer);
                Assert.Equal(castSignature, Hex.Encode0x(EthKey.FromHex(key).SignPersonal(message)));
            }
        }
    }

    [Fact]
    public void EthersSignMessage_SeveralKeysAndPayloads_RecoverToEthersAddress()
    {
        var signed = SignWithEthers(Keys, Payloads);
        Assert.Equal(Keys.Length * Payloads.Length, signed.Count);
        foreach (var (address, payload, signature) in signed)
        {
            Assert.Equal(SignatureCheck.Valid, PersonalSign.TryRecover(Encoding.UTF8.GetBytes(payload), Hex.Decode(signature), out var signer));
            Assert.Equal(EthAddress.Parse(address), signer);
        }
    }

    [Fact]
    public void EthersSignature_WithAFlippedByteInPayloadOrSignature_DoesNotRecoverTheSigner()
    {
        var (address, payload, signature) = SignWithEthers(Keys[..1], Payloads[..1]).Single();
        var expected = EthAddress.Parse(address);
        var message = Encoding.UTF8.GetBytes(payload);
        var sig = Hex.Decode(signature);

        for (var i = 0; i < message.Length; i++)
        {
            var flipped = (byte[])message.Clone();
            flipped[i] ^= 0x01;
            Assert.False(Recovers(flipped, sig, expected), $"payload byte {i} flipped still verified");
        }
        for (var i = 0; i < sig.Length; i++)
        {
            var flipped = (byte[])sig.Clone();
            flipped[i] ^= 0x01;
            Assert.False(Recovers(message, flipped, expected), $"signature byte {i} flipped still verified");
        }
    }

    [Fact]
    public void Addresses_RoundTripEip55_AsEthersWritesThem()
    {
        var lower = Enumerable.Range(0, 20).Select(i => EthKey.FromSeed(BitConverter.GetBytes(i)).Address.ToLowerHex()).ToArray();
        var script = "const {getAddress}=require('ethers');const input=require('fs').readFileSync(process.argv[1],'utf8').trim().split('\\n');console.log(JSON.stringify(input.map(a=>getAddress(a))));";
        var checksummed = JsonSerializer.Deserialize<string[]>(RepositoryTools.Node(script, string.Join('\n', lower)))!;
        for (var i = 0; i < lower.Length; i++)
        {
            var parsed = EthAddress.Parse(lower[i]);
            Assert.Equal(checksummed[i], parsed.ToString());
            Assert.Equal(parsed, EthAddress.Parse(checksummed[i]));
            Assert.Equal(lower[i], EthAddress.Parse(checksummed[i]).ToLowerHex());
        }
    }

    private static bool Recovers(byte[] message, byte[] signature, EthAddress expected) =>
        PersonalSign.TryRecover(message, signature, out var signer) == SignatureCheck.Valid && signer == expected;

    private static List<(string Address, string Payload, string Signature)> SignWithEthers(string[] keys, string[] payloads)
    {
        const string script = """
            const {Wallet} = require('ethers');
            const {keys, payloads} = JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8'));
            (async () => {
              const out = [];
              for (const k of keys) { const w = new Wallet(k); for (const p of payloads) out.push([w.address, p, await w.signMessage(p)]); }
              console.log(JSON.stringify(out));
            })();
            """;
        var input = JsonSerializer.Serialize(new { keys, payloads });
        var rows = JsonSerializer.Deserialize<string[][]>(RepositoryTools.Node(script, input))!;
        return rows.Select(r => (r[0], r[1], r[2])).ToList();
    }
}
