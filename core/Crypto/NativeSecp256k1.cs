using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Pipeline.Core.Crypto;

/// <summary>
/// libsecp256k1 (Debian's libsecp256k1-1, recovery module included) through function pointers: one context for
/// the process, stack buffers per call, so the hot path allocates nothing.
/// </summary>
public sealed unsafe class NativeSecp256k1 : Secp256k1
{
    private static readonly string[] LibraryNames = ["libsecp256k1.so.1", "libsecp256k1.so", "libsecp256k1.so.2", "secp256k1"];
    private const uint ContextSignAndVerify = 0x0301;
    private const uint SerializeUncompressed = 0x0002;
    private static readonly Lazy<NativeSecp256k1?> Loaded = new(Load);

    // The library's opaque structs: secp256k1_pubkey is 64 bytes, secp256k1_ecdsa_recoverable_signature 65.
    private const int PubkeyStructSize = 64;
    private const int RecoverableSignatureStructSize = 65;

    private readonly nint _context;
    private readonly delegate* unmanaged<nint, byte*, byte*, int, int> _parseCompact;
    private readonly delegate* unmanaged<nint, byte*, byte*, byte*, int> _recover;
    private readonly delegate* unmanaged<nint, byte*, nuint*, byte*, uint, int> _serializePubkey;
    private readonly delegate* unmanaged<nint, byte*, byte*, byte*, nint, nint, int> _signRecoverable;
    private readonly delegate* unmanaged<nint, byte*, int*, byte*, int> _serializeCompact;
    private readonly delegate* unmanaged<nint, byte*, byte*, int> _createPubkey;

    private NativeSecp256k1(nint library)
    {
        var create = (delegate* unmanaged<uint, nint>)NativeLibrary.GetExport(library, "secp256k1_context_create");
        var randomize = (delegate* unmanaged<nint, byte*, int>)NativeLibrary.GetExport(library, "secp256k1_context_randomize");
        _parseCompact = (delegate* unmanaged<nint, byte*, byte*, int, int>)NativeLibrary.GetExport(library, "secp256k1_ecdsa_recoverable_signature_parse_compact");
        _recover = (delegate* unmanaged<nint, byte*, byte*, byte*, int>)NativeLibrary.GetExport(library, "secp256k1_ecdsa_recover");
        _serializePubkey = (delegate* unmanaged<nint, byte*, nuint*, byte*, uint, int>)NativeLibrary.GetExport(library, "secp256k1_ec_pubkey_serialize");
        _signRecoverable = (delegate* unmanaged<nint, byte*, byte*, byte*, nint, nint, int>)NativeLibrary.GetExport(library, "secp256k1_ecdsa_sign_recoverable");
        _serializeCompact = (delegate* unmanaged<nint, byte*, int*, byte*, int>)NativeLibrary.GetExport(library, "secp256k1_ecdsa_recoverable_signature_serialize_compact");
        _createPubkey = (delegate* unmanaged<nint, byte*, byte*, int>)NativeLibrary.GetExport(library, "secp256k1_ec_pubkey_create");

        _context = create(ContextSignAndVerify);
        // Blinding against side channels while signing; done once, before any concurrent use.
        Span<byte> seed = stackalloc byte[32];
        RandomNumberGenerator.Fill(seed);
        fixed (byte* s = seed) randomize(_context, s);
    }

    public override string Name => "native libsecp256k1";

    /// <summary>The process-wide instance, or null when libsecp256k1 (with its recovery module) cannot be loaded.</summary>
    public static NativeSecp256k1? TryLoad() => Loaded.Value;

    private static NativeSecp256k1? Load()
    {
        foreach (var name in LibraryNames)
        {
            if (!NativeLibrary.TryLoad(name, out var library)) continue;
            if (!NativeLibrary.TryGetExport(library, "secp256k1_ecdsa_recover", out _)) continue;
            return new NativeSecp256k1(library);
        }
        return null;
    }

    public override bool TryRecover(ReadOnlySpan<byte> hash, ReadOnlySpan<byte> signature64, int recoveryId, Span<byte> publicKey64)
    {
        if (hash.Length != 32 || signature64.Length != 64 || publicKey64.Length != 64 || (uint)recoveryId > 3) return false;
        byte* signature = stackalloc byte[RecoverableSignatureStructSize];
        byte* pubkey = stackalloc byte[PubkeyStructSize];
        byte* serialized = stackalloc byte[65];
        nuint length = 65;
        fixed (byte* input = signature64)
        fixed (byte* message = hash)
        {
            if (_parseCompact(_context, signature, input, recoveryId) != 1) return false;
            if (_recover(_context, pubkey, signature, message) != 1) return false;
        }
        _serializePubkey(_context, serialized, &length, pubkey, SerializeUncompressed);
        new ReadOnlySpan<byte>(serialized + 1, 64).CopyTo(publicKey64);
        return true;
    }

    public override int Sign(ReadOnlySpan<byte> hash, ReadOnlySpan<byte> privateKey, Span<byte> signature64)
    {
        if (hash.Length != 32 || privateKey.Length != 32 || signature64.Length != 64) throw new ArgumentException("Signing takes a 32-byte hash and key and a 64-byte output.");
        byte* signature = stackalloc byte[RecoverableSignatureStructSize];
        int recoveryId;
        fixed (byte* message = hash)
        fixed (byte* key = privateKey)
        fixed (byte* output = signature64)
        {
            // Null nonce function: the library default, RFC 6979 with HMAC-SHA256.
            if (_signRecoverable(_context, signature, message, key, 0, 0) != 1) throw new ArgumentException("The private key is not in [1, n-1].", nameof(privateKey));
            _serializeCompact(_context, output, &recoveryId, signature);
        }
        return recoveryId;
    }

    public override bool TryGetPublicKey(ReadOnlySpan<byte> privateKey, Span<byte> publicKey64)
    {
        if (privateKey.Length != 32 || publicKey64.Length != 64) return false;
        byte* pubkey = stackalloc byte[PubkeyStructSize];
        byte* serialized = stackalloc byte[65];
        nuint length = 65;
        fixed (byte* key = privateKey)
        {
            if (_createPubkey(_context, pubkey, key) != 1) return false;
        }
        _serializePubkey(_context, serialized, &length, pubkey, SerializeUncompressed);
        new ReadOnlySpan<byte>(serialized + 1, 64).CopyTo(publicKey64);
        return true;
    }
}
