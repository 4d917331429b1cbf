using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Core.Signals;

namespace Pipeline.Streams.Processing;

/// <summary>What became of one message.</summary>
public enum Verdict
{
    /// <summary>Stored as ReadingAccepted.</summary>
    Accepted,
    /// <summary>The same reading id was processed before: dropped and counted.</summary>
    Duplicate,
    /// <summary>Signed by its registered device but failing a check: ReadingRejected on the device's stream and a dead letter.</summary>
    RejectedSigned,
    /// <summary>Forged, unsigned, unregistered or unreadable: a dead letter only; no device's stream is touched.</summary>
    RejectedUnsigned,
}

/// <summary>The outcome for one message, with what the store needs to record it.</summary>
public sealed record Outcome(RawMessage Message, Verdict Verdict, SignedReading? Reading, string? Device, Dictionary<string, double>? Signals, Rejection? Rejection);

/// <summary>A message after the checks that need nothing but the message and the registry.</summary>
public sealed record Checked(RawMessage Message, SignedReading? Reading, Dictionary<string, double>? Signals, Rejection? Rejection, bool SignedByRegisteredDevice);

/// <summary>
/// The trust model as pure functions. First the checks of a message alone (shape, signature, registration, OBD
/// decoding, signal catalog and ranges, device clock) — these run in parallel. Then, per device in offset order, the
/// checks against what was already accepted: duplicates, equivocation (same seq, other payload) and teleports.
/// </summary>
public static class ReadingValidator
{
    public static (SignedReading? Reading, Rejection? Rejection) Parse(RawMessage message, EnvelopeLimits limits)
    {
        var (reading, rejection) = EnvelopeParser.Parse(message.Value, limits);
        return (reading, rejection);
    }

    /// <summary>The signature: who signed this payload, and is it the device it names?</summary>
    public static Rejection? CheckSigner(SignedReading reading, Secp256k1 curve)
    {
        var check = reading.TryRecoverSigner(out var signer, curve);
        if (check != SignatureCheck.Valid)
            return new Rejection(ReasonCode.BadSignature, $"The signature does not verify ({check}).");
        return signer == reading.Content.Device
            ? null
            : new Rejection(ReasonCode.SignerMismatch, $"Signed by {signer.ToLowerHex()}, not by the device {reading.Content.Device.ToLowerHex()}.");
    }

    /// <summary>Everything about one message that needs no other message: run after the signer was checked; <paramref name="registered"/> is the device's kind, null when it is not registered.</summary>
    public static Checked CheckAlone(RawMessage message, SignedReading reading, DeviceKind? registered, PlausibilityLimits limits)
    {
        var payload = reading.Content;
        if (registered is not { } kind)
            return new Checked(message, reading, null, new Rejection(ReasonCode.UnknownDevice, $"Device {payload.Device.ToLowerHex()} is not registered; its owner registers it at POST /v1/devices."), false);
        if (kind != payload.Kind)
            return new Checked(message, reading, null, new Rejection(ReasonCode.Malformed, $"The reading says kind {payload.Kind.ToWire()} but the device is registered as {kind.ToWire()}."), true);
        var (signals, rejection) = Plausibility.Decode(payload);
        rejection ??= Plausibility.CheckSignals(payload.Kind, signals!) ?? Plausibility.CheckTime(payload.DeviceTime, message.ReceivedAt, limits);
        return new Checked(message, reading, rejection is null ? signals : null, rejection, true);
    }

    /// <summary>What the store already knows of a device: the ids processed, the seqs accepted (with their ids), the last fix.</summary>
    /// <param name="device">The device's stream id (lower-case hex), made once per device and batch; null to make it per reading.</param>
    /// <param name="readings">The device's readings in the batch: the sets are made that size at once instead of growing.</param>
    public sealed class DeviceHistory(string? device = null, int readings = 0)
    {
        public string? Device { get; } = device;
        public HashSet<ReadingId> ProcessedIds { get; } = new(readings);
        public Dictionary<long, ReadingId> AcceptedSeqs { get; } = new(readings);
        public Fix? LastFix { get; set; }
    }

    /// <summary>
    /// The checks against earlier readings of the same device, in offset order; updates <paramref name="history"/> as
    /// it accepts, so later messages of the batch see earlier ones.
    /// </summary>
    public static Outcome Decide(Checked message, DeviceHistory history, PlausibilityLimits limits)
    {
        if (message.Reading is not { } reading)
            return new Outcome(message.Message, Verdict.RejectedUnsigned, null, null, null, message.Rejection);
        var device = history.Device ?? reading.Content.Device.ToLowerHex();
        if (!message.SignedByRegisteredDevice)
            return new Outcome(message.Message, Verdict.RejectedUnsigned, reading, device, null, message.Rejection);
        if (!history.ProcessedIds.Add(reading.ReadingId))
            return new Outcome(message.Message, Verdict.Duplicate, reading, device, null, null);

        var rejection = message.Rejection;
        if (rejection is null && history.AcceptedSeqs.TryGetValue(reading.Content.Seq, out var acceptedId) && acceptedId != reading.ReadingId)
            rejection = new Rejection(ReasonCode.SeqConflict, $"Seq {reading.Content.Seq} was already accepted with reading {acceptedId}; a device signs one payload per seq.");
        var fix = message.Signals is null ? null : Plausibility.FixOf(message.Signals, reading.Content.DeviceTime);
        if (rejection is null && fix is { } current) rejection = Plausibility.CheckMovement(history.LastFix, current, limits);
        if (rejection is not null)
            return new Outcome(message.Message, Verdict.RejectedSigned, reading, device, null, rejection);

        history.AcceptedSeqs[reading.Content.Seq] = reading.ReadingId;
        // Out-of-order arrivals (a buffered upload) must not move the reference fix backwards in time.
        if (fix is { } accepted && (history.LastFix is not { } last || accepted.DeviceTime >= last.DeviceTime)) history.LastFix = accepted;
        return new Outcome(message.Message, Verdict.Accepted, reading, device, message.Signals, null);
    }
}
