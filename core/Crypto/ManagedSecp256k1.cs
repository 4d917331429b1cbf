using Org.BouncyCastle.Asn1.X9;
using Org.BouncyCastle.Crypto.Digests;
using Org.BouncyCastle.Crypto.Parameters;
using Org.BouncyCastle.Crypto.Signers;
using Org.BouncyCastle.Math;
using Org.BouncyCastle.Math.EC;

namespace Pipeline.Core.Crypto;

/// <summary>secp256k1 with BouncyCastle: the fallback when libsecp256k1 is absent; about 20× slower.</summary>
public sealed class ManagedSecp256k1 : Secp256k1
{
    public static ManagedSecp256k1 Instance { get; } = new();

    private static readonly X9ECParameters Curve = ECNamedCurveTable.GetByName("secp256k1");
    private static readonly ECDomainParameters Domain = new(Curve);
    private static readonly BigInteger N = Curve.N;
    private static readonly BigInteger HalfN = Curve.N.ShiftRight(1);

    private ManagedSecp256k1() { }

    public override string Name => "managed BouncyCastle";

    public override bool TryRecover(ReadOnlySpan<byte> hash, ReadOnlySpan<byte> signature64, int recoveryId, Span<byte> publicKey64)
    {
        if (hash.Length != 32 || signature64.Length != 64 || publicKey64.Length != 64 || (uint)recoveryId > 3) return false;
        var r = new BigInteger(1, signature64[..32]);
        var s = new BigInteger(1, signature64[32..]);
        if (r.SignValue <= 0 || r.CompareTo(N) >= 0 || s.SignValue <= 0 || s.CompareTo(N) >= 0) return false;

        // R is the curve point whose x is r (plus n for recovery ids 2 and 3) and whose y parity is the id's low bit.
        var x = recoveryId >= 2 ? r.Add(N) : r;
        if (x.CompareTo(Curve.Curve.Field.Characteristic) >= 0) return false;
        Span<byte> compressed = stackalloc byte[33];
        compressed[0] = (byte)(0x02 | (recoveryId & 1));
        WriteScalar(x, compressed[1..]);
        ECPoint point;
        try
        {
            point = Curve.Curve.DecodePoint(compressed.ToArray());
        }
        catch (ArgumentException)
        {
            return false; // x is not on the curve
        }

        // Q = r⁻¹(sR − eG)
        var e = new BigInteger(1, hash);
        var rInverse = r.ModInverse(N);
        var u1 = e.Negate().Mod(N).Multiply(rInverse).Mod(N);
        var u2 = s.Multiply(rInverse).Mod(N);
        var q = ECAlgorithms.SumOfTwoMultiplies(Curve.G, u1, point, u2).Normalize();
        if (q.IsInfinity) return false;
        WriteCoordinates(q, publicKey64);
        return true;
    }

    public override int Sign(ReadOnlySpan<byte> hash, ReadOnlySpan<byte> privateKey, Span<byte> signature64)
    {
        var d = new BigInteger(1, privateKey);
        if (d.SignValue <= 0 || d.CompareTo(N) >= 0) throw new ArgumentException("The private key is not in [1, n-1].", nameof(privateKey));
        var signer = new ECDsaSigner(new HMacDsaKCalculator(new Sha256Digest()));
        signer.Init(true, new ECPrivateKeyParameters(d, Domain));
        var rs = signer.GenerateSignature(hash.ToArray());
        var r = rs[0];
        var s = rs[1].CompareTo(HalfN) > 0 ? N.Subtract(rs[1]) : rs[1];
        WriteScalar(r, signature64[..32]);
        WriteScalar(s, signature64[32..]);

        Span<byte> expected = stackalloc byte[64];
        WriteCoordinates(Curve.G.Multiply(d).Normalize(), expected);
        Span<byte> candidate = stackalloc byte[64];
        for (var id = 0; id < 4; id++)
        {
            if (TryRecover(hash, signature64, id, candidate) && candidate.SequenceEqual(expected)) return id;
        }
        throw new InvalidOperationException("No recovery id reproduces the signing key; the signature is inconsistent.");
    }

    public override bool TryGetPublicKey(ReadOnlySpan<byte> privateKey, Span<byte> publicKey64)
    {
        if (privateKey.Length != 32 || publicKey64.Length != 64) return false;
        var d = new BigInteger(1, privateKey);
        if (d.SignValue <= 0 || d.CompareTo(N) >= 0) return false;
        WriteCoordinates(Curve.G.Multiply(d).Normalize(), publicKey64);
        return true;
    }

    private static void WriteCoordinates(ECPoint point, Span<byte> publicKey64)
    {
        WriteScalar(point.AffineXCoord.ToBigInteger(), publicKey64[..32]);
        WriteScalar(point.AffineYCoord.ToBigInteger(), publicKey64[32..]);
    }

    private static void WriteScalar(BigInteger value, Span<byte> destination)
    {
        var bytes = value.ToByteArrayUnsigned();
        destination.Clear();
        bytes.CopyTo(destination[(destination.Length - bytes.Length)..]);
    }
}
