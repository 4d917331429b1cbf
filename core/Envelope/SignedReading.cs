using Pipeline.Core.Crypto;

namespace Pipeline.Core.Envelope;

/// <summary>What a payload says, parsed with strict types; whether it is true is for the processors to decide.</summary>
public sealed record ReadingPayload(
    EthAddress Device,
    long Seq,
    DateTimeOffset DeviceTime,
    DeviceKind Kind,
    IReadOnlyDictionary<string, double> Signals,
    IReadOnlyList<string> Obd);

/// <summary>One reading as a device sent it: the envelope bytes, the exact signed payload bytes and its signature.</summary>
public sealed class SignedReading
{
    public SignedReading(ReadOnlyMemory<byte> envelope, byte[] payload, byte[] signature, ReadingPayload content)
    {
        Envelope = envelope;
        Payload = payload;
        Signature = signature;
        Content = content;
        ReadingId = ReadingId.Of(payload);
    }

    /// <summary>The envelope JSON text exactly as received; what is forwarded to Kafka and dead-lettered.</summary>
    public ReadOnlyMemory<byte> Envelope { get; }

    /// <summary>The UTF-8 bytes that were signed.</summary>
    public byte[] Payload { get; }

    /// <summary>65 bytes r‖s‖v.</summary>
    public byte[] Signature { get; }

    public ReadingPayload Content { get; }

    /// <summary>keccak256 of the payload bytes: the same payload is the same reading.</summary>
    public ReadingId ReadingId { get; }

    /// <summary>The reading id as "0x" + 64 lower-case hex, made on first use (the processors' hot path never asks).</summary>
    public string Id => _id ??= ReadingId.ToString();

    private string? _id;

    /// <summary>Recovers the signer of the payload (EIP-191); bad_signature unless the signature is valid and low-s.</summary>
    public SignatureCheck TryRecoverSigner(out EthAddress signer, Secp256k1? curve = null) =>
        PersonalSign.TryRecover(Payload, Signature, out signer, curve);
}
