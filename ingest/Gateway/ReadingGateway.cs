using System.Diagnostics;
using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;

namespace Pipeline.Ingest.Gateway;

/// <summary>
/// What became of one reading of a request: accepted (the broker has it), duplicate (the broker already had it from an
/// earlier request), refused (with a reason), or unavailable (retry).
/// </summary>
public sealed record Receipt(int Index, string Status, string? Id = null, string? Reason = null, string? Detail = null)
{
    public const string AcceptedStatus = "accepted";
    public const string DuplicateStatus = "duplicate";
    public const string RefusedStatus = "refused";
    public const string UnavailableStatus = "unavailable";

    public static Receipt Refused(int index, Rejection rejection, string? id = null) => new(index, RefusedStatus, id, rejection.Code.ToWire(), rejection.Detail);

    public static Receipt Duplicate(int index, string id) =>
        new(index, DuplicateStatus, id, Detail: "This edge already had the broker acknowledge this reading; it is stored once, nothing to resend.");
}

public sealed record SubmitResult(IReadOnlyList<Receipt> Receipts)
{
    public int Accepted => Receipts.Count(r => r.Status == Receipt.AcceptedStatus);
    public int Duplicates => Receipts.Count(r => r.Status == Receipt.DuplicateStatus);
    public int Refused => Receipts.Count(r => r.Status == Receipt.RefusedStatus);
    public int Unavailable => Receipts.Count(r => r.Status == Receipt.UnavailableStatus);

    /// <summary>Refused for now, not for good: the same readings sent again later may pass.</summary>
    public int RateLimited => Receipts.Count(r => r.Reason == RateLimitedReason);

    private static readonly string RateLimitedReason = ReasonCode.RateLimited.ToWire();
}

/// <summary>
/// Who hands readings to the edge: the transport, the client (remote address for HTTP, the authenticated device for
/// MQTT), and for MQTT the device the connection authenticated as, which is also the device its topic names. A topic
/// device means the publish is acknowledged, or not, as a whole.
/// </summary>
public readonly record struct Sender(string Transport, string Client, EthAddress? TopicDevice = null);

/// <summary>
/// The edge's checks and hand-over, shared by HTTP and MQTT: only cheap checks here (shape, address, replays of what
/// the broker already has, optionally the signature, the device's rate), then every surviving reading to the broker,
/// each receipt saying what became of it.
/// </summary>
public sealed class ReadingGateway(IReadingBroker producer, BacklogGate backlog, IngestMetrics metrics, IOptions<IngestOptions> options, TimeProvider clock) : IDisposable
{
    private readonly IngestOptions _options = options.Value;

    private readonly PartitionedRateLimiter<DeviceBucket> _devices = TokenBuckets.PerKey<DeviceBucket>(options.Value.DeviceReadingsPerSecond, options.Value.DeviceBurst);

    private readonly RecentReadings _recent = new(options.Value.RecentReadings, options.Value.RecentWindow, clock);

    public async Task<SubmitResult> SubmitAsync(IReadOnlyList<BatchItem> items, Sender sender, CancellationToken cancellation)
    {
        metrics.Received(sender.Transport, items.Count);
        var receipts = new Receipt[items.Count];
        var passed = new List<Candidate>(items.Count);
        // A reading twice in one request: the later copy shares the first one's fate instead of being produced again.
        var firstOf = items.Count > 1 ? new Dictionary<UInt128, int>(items.Count) : null;
        List<(int Copy, int Original)>? copies = null;
        long bytes = 0;
        foreach (var item in items)
        {
            var rejection = item.Rejection ?? CheckTopic(item.Reading!, sender.TopicDevice);
            if (rejection is not null)
            {
                Refuse(item, rejection, receipts, sender.Transport);
                continue;
            }
            // Before the signature and the rate: a replay of what the broker has costs neither a recovery nor a token.
            var key = RecentReadings.KeyOf(item.Reading!);
            if (_recent.Contains(key))
            {
                receipts[item.Index] = Receipt.Duplicate(item.Index, item.Reading!.Id);
                metrics.Duplicate(sender.Transport);
                continue;
            }
            if (firstOf is not null && !firstOf.TryAdd(key, item.Index))
            {
                (copies ??= []).Add((item.Index, firstOf[key]));
                continue;
            }
            rejection = CheckSignature(item.Reading!);
            if (rejection is not null)
            {
                Refuse(item, rejection, receipts, sender.Transport);
                continue;
            }
            passed.Add(new Candidate(item, key));
            bytes += ReadingProducer.RecordBytes(item.Raw.Length);
        }
        if (passed.Count > 0) await HandOverAsync(passed, bytes, sender, receipts, cancellation);
        if (copies is not null) Settle(copies, receipts, sender.Transport);
        return new SubmitResult(receipts);
    }

    /// <summary>
    /// Room with the producer and on the broker, the device's rate, then the broker: each passed reading ends accepted,
    /// refused or unavailable.
    /// </summary>
    private async Task HandOverAsync(List<Candidate> passed, long bytes, Sender sender, Receipt[] receipts, CancellationToken cancellation)
    {
        // Room first, the device's tokens second: a reading the broker cannot take now costs no rate. Reserved before the
        // backlog is checked, so requests checked at the same time each see the others' bytes.
        if (!producer.TryReserve(bytes))
        {
            MarkUnavailable(passed, UnavailableDetail, receipts, sender.Transport);
            return;
        }
        if (backlog.Check(producer.InFlightBytes, bytes) is { } behind)
        {
            producer.Release(bytes);
            if (behind.Code == ReasonCode.TooLarge)
            {
                foreach (var candidate in passed) Refuse(candidate.Item, behind, receipts, sender.Transport);
            }
            else
            {
                MarkUnavailable(passed, behind.Detail, receipts, sender.Transport);
            }
            return;
        }
        var outgoing = AdmitByRate(passed, sender, receipts);
        var admittedBytes = 0L;
        foreach (var candidate in outgoing) admittedBytes += ReadingProducer.RecordBytes(candidate.Item.Raw.Length);
        producer.Release(bytes - admittedBytes);
        if (outgoing.Count == 0) return;

        var readings = new List<OutgoingReading>(outgoing.Count);
        foreach (var candidate in outgoing) readings.Add(new OutgoingReading(candidate.Item.Reading!.Content.Device.ToLowerHex(), candidate.Item.Raw));
        var deliveries = await ProduceAsync(readings, sender.Transport, cancellation);
        var accepted = 0;
        for (var i = 0; i < outgoing.Count; i++)
        {
            var item = outgoing[i].Item;
            if (deliveries[i] == Delivery.Acknowledged)
            {
                receipts[item.Index] = new Receipt(item.Index, Receipt.AcceptedStatus, item.Reading!.Id);
                // Only what this edge answered "accepted": a reading acknowledged after its request got 503 is produced
                // again when resent, so a client told to resend is never told "duplicate" for something it was not told stored.
                _recent.Add(outgoing[i].Key);
                accepted++;
            }
            else
            {
                receipts[item.Index] = Unavailable(item, UnavailableDetail);
            }
        }
        metrics.Accepted(sender.Transport, accepted);
        if (accepted < outgoing.Count) metrics.Refused(sender.Transport, ReasonCode.Unavailable.ToWire(), outgoing.Count - accepted);
    }

    /// <summary>A later copy in the same request: duplicate when its first copy was accepted, otherwise the first copy's receipt.</summary>
    private void Settle(List<(int Copy, int Original)> copies, Receipt[] receipts, string transport)
    {
        foreach (var (copy, original) in copies)
        {
            var first = receipts[original];
            if (first.Status is Receipt.AcceptedStatus or Receipt.DuplicateStatus)
            {
                receipts[copy] = Receipt.Duplicate(copy, first.Id!);
                metrics.Duplicate(transport);
            }
            else
            {
                receipts[copy] = first with { Index = copy };
                metrics.Refused(transport, first.Reason!);
            }
        }
    }

    /// <summary>A reading that passed the cheap checks, with its key among the recent readings.</summary>
    private readonly record struct Candidate(BatchItem Item, UInt128 Key);

    /// <summary>Sends a reading refused where no response can carry the reason (MQTT) to the dead-letter topic.</summary>
    public Task DeadLetterAsync(ReadOnlyMemory<byte> original, string? device, string reason, string detail, string source, CancellationToken cancellation) =>
        producer.DeadLetterAsync(device, original, reason, detail, source, cancellation);

    /// <summary>
    /// The readings the device rates let through; the rest get rate_limited receipts. An MQTT publish spends its
    /// device's tokens together or not at all: it is resent whole, so admitting part of it would spend tokens on every
    /// resend and never get the rest through.
    /// </summary>
    private List<Candidate> AdmitByRate(List<Candidate> passed, Sender sender, Receipt[] receipts)
    {
        if (sender.TopicDevice is { } device)
        {
            if (passed.Count > _options.DeviceBurst)
            {
                var tooMany = new Rejection(ReasonCode.TooLarge, $"{passed.Count} readings in one publish can never pass a device's burst of {_options.DeviceBurst}; publish fewer at a time.");
                foreach (var candidate in passed) Refuse(candidate.Item, tooMany, receipts, sender.Transport);
                return [];
            }
            using var lease = _devices.AttemptAcquire(BucketOf(device, sender), passed.Count);
            if (lease.IsAcquired) return passed;
            var throttled = RateLimited(device);
            foreach (var candidate in passed) Refuse(candidate.Item, throttled, receipts, sender.Transport);
            return [];
        }

        var admitted = new List<Candidate>(passed.Count);
        foreach (var candidate in passed)
        {
            var claimed = candidate.Item.Reading!.Content.Device;
            using var lease = _devices.AttemptAcquire(BucketOf(claimed, sender));
            if (lease.IsAcquired) admitted.Add(candidate);
            else Refuse(candidate.Item, RateLimited(claimed), receipts, sender.Transport);
        }
        return admitted;
    }

    /// <summary>
    /// Whose tokens a reading spends. Unverified, the device a payload names is only a claim, so each client has its own
    /// bucket per device it names: forgeries naming a device cannot use up the real device's rate. Verified at the edge,
    /// or sent over an MQTT connection its key logged in to, the device proved itself and has one bucket wherever it
    /// sends from.
    /// </summary>
    private DeviceBucket BucketOf(EthAddress device, Sender sender) => new(_options.VerifySignatures || sender.TopicDevice is not null ? null : sender.Client, device);

    /// <summary>A device's token bucket, per client when the device is unverified (a struct key: nothing allocated per reading).</summary>
    private readonly record struct DeviceBucket(string? Client, EthAddress Device);

    private Rejection RateLimited(EthAddress device) =>
        new(ReasonCode.RateLimited, $"Device {device.ToLowerHex()} sent more than {_options.DeviceReadingsPerSecond} readings/s (burst {_options.DeviceBurst}); retry after {_options.RetryAfterSeconds} s.");

    private void Refuse(BatchItem item, Rejection rejection, Receipt[] receipts, string transport)
    {
        receipts[item.Index] = Receipt.Refused(item.Index, rejection, item.Reading?.Id);
        metrics.Refused(transport, rejection.Code.ToWire());
    }

    private const string UnavailableDetail = "The broker did not acknowledge this reading in time; send it again (a reading sent twice is stored once).";

    private static Receipt Unavailable(BatchItem item, string detail) =>
        new(item.Index, Receipt.UnavailableStatus, item.Reading!.Id, ReasonCode.Unavailable.ToWire(), detail);

    private void MarkUnavailable(List<Candidate> passed, string detail, Receipt[] receipts, string transport)
    {
        foreach (var candidate in passed) receipts[candidate.Item.Index] = Unavailable(candidate.Item, detail);
        metrics.Refused(transport, ReasonCode.Unavailable.ToWire(), passed.Count);
    }

    private async Task<Delivery[]> ProduceAsync(List<OutgoingReading> outgoing, string transport, CancellationToken cancellation)
    {
        var started = Stopwatch.GetTimestamp();
        var deliveries = await producer.ProduceAsync(outgoing, transport, clock.GetUtcNow(), _options.AckTimeout, cancellation);
        metrics.ProduceLatency(Stopwatch.GetElapsedTime(started));
        return deliveries;
    }

    private static Rejection? CheckTopic(SignedReading reading, EthAddress? topicDevice)
    {
        var device = reading.Content.Device;
        return topicDevice is { } expected && expected != device
            ? new Rejection(ReasonCode.BadAddress, $"The topic names device {expected.ToLowerHex()} but the payload is from {device.ToLowerHex()}.")
            : null;
    }

    private Rejection? CheckSignature(SignedReading reading)
    {
        var device = reading.Content.Device;
        if (!_options.VerifySignatures) return null;
        var check = reading.TryRecoverSigner(out var signer);
        if (check != SignatureCheck.Valid)
            return new Rejection(ReasonCode.BadSignature, $"The signature does not verify ({check}); sign the payload bytes with EIP-191 personal_sign.");
        return signer == device
            ? null
            : new Rejection(ReasonCode.SignerMismatch, $"Signed by {signer.ToLowerHex()}, not by the device {device.ToLowerHex()}.");
    }

    public void Dispose() => _devices.Dispose();
}

/// <summary>
/// Requests per client, refused with 429 / a disconnect past the limit: per address for HTTP requests and MQTT connection
/// attempts, per authenticated device for MQTT publishes.
/// </summary>
public sealed class ClientRateLimiter(IOptions<IngestOptions> options) : IDisposable
{
    private readonly PartitionedRateLimiter<string> _clients = TokenBuckets.PerKey<string>(options.Value.ClientRequestsPerSecond, options.Value.ClientBurst);

    public bool TryAcquire(string client)
    {
        using var lease = _clients.AttemptAcquire(client);
        return lease.IsAcquired;
    }

    public void Dispose() => _clients.Dispose();
}

/// <summary>A token bucket per key (device, client), refilled every second, never queueing: over the rate is refused at once.</summary>
internal static class TokenBuckets
{
    public static PartitionedRateLimiter<TKey> PerKey<TKey>(int perSecond, int burst) where TKey : notnull => PartitionedRateLimiter.Create<TKey, TKey>(key =>
        RateLimitPartition.GetTokenBucketLimiter(key, _ => new TokenBucketRateLimiterOptions
        {
            TokenLimit = burst,
            TokensPerPeriod = perSecond,
            ReplenishmentPeriod = TimeSpan.FromSeconds(1),
            QueueLimit = 0,
            AutoReplenishment = true,
        }));
}
