using Pipeline.Core.Crypto;

namespace Pipeline.Tests.Unit.Crypto;

public sealed class NativeManagedAgreementTests
{
    private readonly Secp256k1 _native = NativeSecp256k1.TryLoad() ?? throw new InvalidOperationException("libsecp256k1 did not load; ./depin installs Debian's libsecp256k1-1.");
    private readonly Secp256k1 _managed = ManagedSecp256k1.Instance;

    [Fact]
    public void BothPaths_OnThousandsOfRandomKeysAndMessages_SignAndRecoverAlike()
    {
        var random = new Random(20261123);
        for (var i = 0; i < 2_000; i++)
        {
            var key = new byte[32];
            random.NextBytes(key);
            var publicKey = new byte[64];
            if (!_native.TryGetPublicKey(key, publicKey)) continue;
            var message = new byte[random.Next(0, 300)];
            random.NextBytes(message);

            var nativeSignature = PersonalSign.Sign(message, key, _native);
            var managedSignature = PersonalSign.Sign(message, key, _managed);
            Assert.Equal(Convert.ToHexString(nativeSignature), Convert.ToHexString(managedSignature));

            Assert.Equal(SignatureCheck.Valid, PersonalSign.TryRecover(message, nativeSignature, out var byNative, _native));
            Assert.Equal(SignatureCheck.Valid, PersonalSign.TryRecover(message, nativeSignature, out var byManaged, _managed));
            Assert.Equal(EthAddress.FromPublicKey(publicKey), byNative);
            Assert.Equal(byNative, byManaged);
        }
    }

    [Fact]
    public void BothPaths_OnRandomSignatureBytes_AgreeOnWhetherAndWhatTheyRecover()
    {
        var random = new Random(7);
        for (var i = 0; i < 2_000; i++)
        {
            var hash = new byte[32];
            var signature = new byte[64];
            random.NextBytes(hash);
            random.NextBytes(signature);
            var recoveryId = random.Next(0, 2);
            var fromNative = new byte[64];
            var fromManaged = new byte[64];
            var nativeOk = _native.TryRecover(hash, signature, recoveryId, fromNative);
            var managedOk = _managed.TryRecover(hash, signature, recoveryId, fromManaged);
            Assert.Equal(nativeOk, managedOk);
            if (nativeOk) Assert.Equal(fromManaged, fromNative);
        }
    }

    [Fact]
    public void Default_IsTheNativePath()
    {
        Assert.IsType<NativeSecp256k1>(Secp256k1.Default);
    }
}
