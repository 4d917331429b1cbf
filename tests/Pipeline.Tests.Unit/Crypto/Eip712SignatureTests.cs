using System.Text.Json;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Core.Registry;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Unit.Crypto;

/// <summary>
/// The registry's EIP-712 typed data (issue 10, item 6) against two implementations we did not write: foundry's
/// <c>cast wallet sign --data</c> and ethers' <c>signTypedData</c> produce the same signatures over our JSON, and
/// ethers computes the same digest.
/// </summary>
public sealed class Eip712SignatureTests
{
    private static readonly EthKey Owner = EthKey.FromHex("0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80");
    private static readonly EthKey Device = EthKey.FromSeed("eip712-device"u8);
    private static readonly EthKey Buyer = EthKey.FromSeed("eip712-buyer"u8);
    private static readonly DateTimeOffset Issued = new(2026, 11, 23, 19, 0, 0, TimeSpan.Zero);

    /// <summary>A vehicle, a station on another network with non-ASCII metadata, and a transfer with a nonce.</summary>
    private static readonly (string Json, byte[] Digest, EthKey[] Signers)[] Messages =
    [
        From(new RegistrationMessage(Device.Address, Owner.Address, DeviceKind.Vehicle,
            new Dictionary<string, string> { ["make"] = "Škoda", ["model"] = "Octavia", ["year"] = "2019", ["firmware"] = "v2.1-東京" }, Issued, RegistryDomain.Dev), Owner, Device),
        From(new RegistrationMessage(Device.Address, Owner.Address, DeviceKind.Weather,
            new Dictionary<string, string> { ["latitude"] = "53.35", ["longitude"] = "-6.26", ["elevation"] = "71", ["model"] = "WS-2000" }, Issued,
            new Eip712Domain("Another DePIN", "1", 8453)) { IssuedAtText = "2026-11-23T20:00:00.123+01:00" }, Owner, Device),
        From(new TransferMessage(Device.Address, Owner.Address, Buyer.Address, 7, Issued, RegistryDomain.Dev), Owner, Buyer),
    ];

    private static (string, byte[], EthKey[]) From(RegistrationMessage m, params EthKey[] signers) => (m.ToJson(), m.Digest(), signers);
    private static (string, byte[], EthKey[]) From(TransferMessage m, params EthKey[] signers) => (m.ToJson(), m.Digest(), signers);

    [Fact]
    public void CastWalletSignData_OverOurTypedData_SignsOurDigest_Issue10()
    {
        foreach (var (json, digest, signers) in Messages)
        {
            foreach (var key in signers)
            {
                var castSignature = RepositoryTools.Run(RepositoryTools.Cast, ["wallet", "sign", "--data", "--private-key", key.ToHex(), json]);
                Assert.Equal(Hex.Encode0x(key.SignHash(digest)), castSignature);
                Assert.Equal(SignatureCheck.Valid, PersonalSign.TryRecoverHash(digest, Hex.Decode(castSignature), out var signer));
                Assert.Equal(key.Address, signer);
            }
        }
    }

    [Fact]
    public void EthersSignTypedData_OverOurTypedData_HashesAndSignsAlike_Issue10()
    {
        const string script = """
            const {Wallet, TypedDataEncoder} = require('ethers');
            const {keys, messages} = JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8'));
            (async () => {
              const out = [];
              for (const m of messages) {
                const td = JSON.parse(m);
                const types = {[td.primaryType]: td.types[td.primaryType]};
                const signatures = [];
                for (const k of keys) signatures.push(await new Wallet(k).signTypedData(td.domain, types, td.message));
                out.push([TypedDataEncoder.hash(td.domain, types, td.message), ...signatures]);
              }
              console.log(JSON.stringify(out));
            })();
            """;
        EthKey[] keys = [Owner, Device, Buyer];
        var input = JsonSerializer.Serialize(new { keys = keys.Select(k => k.ToHex()), messages = Messages.Select(m => m.Json) });
        var rows = JsonSerializer.Deserialize<string[][]>(RepositoryTools.Node(script, input))!;

        for (var i = 0; i < Messages.Length; i++)
        {
            Assert.Equal(Hex.Encode0x(Messages[i].Digest), rows[i][0]);
            for (var k = 0; k < keys.Length; k++) Assert.Equal(Hex.Encode0x(keys[k].SignHash(Messages[i].Digest)), rows[i][k + 1]);
        }
    }

    [Fact]
    public void Digest_DependsOnEveryPartOfTheDomain()
    {
        var message = new TransferMessage(Device.Address, Owner.Address, Buyer.Address, 0, Issued, RegistryDomain.Dev);
        Assert.NotEqual(message.Digest(), (message with { Domain = RegistryDomain.Dev with { ChainId = 1 } }).Digest());
        Assert.NotEqual(message.Digest(), (message with { Domain = RegistryDomain.Dev with { Name = "Other" } }).Digest());
        Assert.NotEqual(message.Digest(), (message with { Domain = RegistryDomain.Dev with { Version = "2" } }).Digest());
    }
}
