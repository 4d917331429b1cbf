using System.Diagnostics;
using System.Threading.RateLimiting;
using Microsoft.Extensions.Options;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;

namespace Pipeline.Ingest.Gateway;

/// <summary>What became of one reading of a request: accepted (the broker has it), refused (with a reason), or unavailable (retry).</summary>
public sealed record Receipt(int Index, string Status, string? Id = null, string? Reason = null, string? Detail = null)
{
    public const string AcceptedStatus = "accepted";
    public const string RefusedStatus = "refused";
    public const string UnavailableStatus = "unavailable";

    public static Receipt Refused(int index, Rejection rejection, string? id = null) => new(index, RefusedStatus, id, rejection.Code.ToWire(), rejection.Detail);
}

public sealed record SubmitResult(IReadOnlyList<Receipt> Receipts)
{
    public int Accepted => Receipts.Count(r => r.Status == Receipt.AcceptedStatus);
    public int Refused => Receipts.Count(r => r.Status == Receipt.RefusedStatus);
    public int Unavailable => Receipts.Count(r => r.Status == Receipt.UnavailableStatus);

    /// <summary>Refused for now, not for good: the same readings sent again later may pass.</summary>
    public int RateLimited => Receipts.Count(r => r.Reason == RateLimitedReason);

    private static readonly string RateLimitedReason = ReasonCode.RateLimited.ToWire();
}

/// <summary>
/// Who hands readings to the edge: the transport, the client (remote address for HTTP, client id for MQTT), and for
/// MQTT the device its topic names. A topic device also means the publish is acknowledged, or not, as a whole.
/// </summary>
public readonly record struct Sender(string Transport, string Client, EthAddress? TopicDevice = null);

/// <summary>
/// The edge's checks and hand-over, shared by HTTP and MQTT: only cheap checks here (shape, address, optionally the
/// signature, the device's rate), then every surviving reading to the broker, each receipt saying what became of it.
/// </summary>
public sealed class ReadingGateway(ReadingProducer producer, IngestMetrics metrics, IOptions<IngestOptions> options, TimeProvider clock) : IDisposable
{
    private readonly IngestOptions _options = options.Value;

    private readonly PartitionedRateLimiter<DeviceBucket> _devices = TokenBuckets.PerKey<DeviceBucket>(options.Value.DeviceReadingsPerSecond, options.Value.DeviceBurst);

    public async Task<SubmitResult> SubmitAsync(IReadOnlyList<BatchItem> items, Sender sender, CancellationToken cancellation)
    {
        metrics.Received(sender.Transport, items.Count);
        var receipts = new Receipt[items.Count];
        var passed = new List<BatchItem>(items.Count);
        long bytes = 0;
        foreach (var item in items)
        {
            var rejection = item.Rejection ?? Check(item.Reading!, sender.TopicDevice);
            if (rejection is not null)
            {
                Refuse(item, rejection, receipts, sender.Transport);
                continue;
            }
            passed.Add(item);
            bytes += item.Raw.Length;
        }
        if (passed.Count == 0) return new SubmitResult(receipts);

        // Room with the producer first, the device's tokens second: a reading the broker cannot take now costs no rate.
        if (!producer.TryReserve(bytes))
        {
            foreach (var item in passed) receipts[item.Index] = Unavailable(item);
            metrics.Refused(sender.Transport, ReasonCode.Unavailable.ToWire(), passed.Count);
            return new SubmitResult(receipts);
        }
        var outgoing = AdmitByRate(passed, sender, receipts);
        var admittedBytes = 0L;
        foreach (var item in outgoing) admittedBytes += item.Raw.Length;
        producer.Release(bytes - admittedBytes);
        if (outgoing.Count == 0) return new SubmitResult(receipts);

        var readings = new List<OutgoingReading>(outgoing.Count);
        foreach (var item in outgoing) readings.Add(new OutgoingReading(item.Reading!.Content.Device.ToLowerHex(), item.Raw));
        var deliveries = await ProduceAsync(readings, sender.Transport, cancellation);
        var accepted = 0;
        for (var i = 0; i < outgoing.Count; i++)
        {
            var item = outgoing[i];
            if (deliveries[i] == Delivery.Acknowledged)
            {
                receipts[item.Index] = new Receipt(item.Index, Receipt.AcceptedStatus, item.Reading!.Id);
                accepted++;
            }
            else
            {
                receipts[item.Index] = Unavailable(item);
            }
        }
        metrics.Accepted(sender.Transport, accepted);
        if (accepted < outgoing.Count) metrics.Refused(sender.Transport, ReasonCode.Unavailable.ToWire(), outgoing.Count - accepted);
        return new SubmitResult(receipts);
    }

    /// <summary>Sends a reading refused where no response can carry the reason (MQTT) to the dead-letter topic.</summary>
    public Task DeadLetterAsync(ReadOnlyMemory<byte> original, string? device, string reason, string detail, string source, CancellationToken cancellation) =>
        producer.DeadLetterAsync(device, original, reason, detail, source, cancellation);

    /// <summary>
    /// The readings the device rates let through; the rest get rate_limited receipts. An MQTT publish spends its
    /// device's tokens together or not at all: it is resent whole, so admitting part of it would spend tokens on every
    /// resend and never get the rest through.
    /// </summary>
    private List<BatchItem> AdmitByRate(List<BatchItem> passed, Sender sender, Receipt[] receipts)
    {
        if (sender.TopicDevice is { } device)
        {
            if (passed.Count > _options.DeviceBurst)
            {
                var tooMany = new Rejection(ReasonCode.TooLarge, $"{passed.Count} readings in one publish can never pass a device's burst of {_options.DeviceBurst}; publish fewer at a time.");
                foreach (var item in passed) Refuse(item, tooMany, receipts, sender.Transport);
                return [];
            }
            using var lease = _devices.AttemptAcquire(BucketOf(device, sender), passed.Count);
            if (lease.IsAcquired) return passed;
            var throttled = RateLimited(device);
            foreach (var item in passed) Refuse(item, throttled, receipts, sender.Transport);
            return [];
        }

        var admitted = new List<BatchItem>(passed.Count);
        foreach (var item in passed)
        {
            var claimed = item.Reading!.Content.Device;
            using var lease = _devices.AttemptAcquire(BucketOf(claimed, sender));
            if (lease.IsAcquired) admitted.Add(item);
            else Refuse(item, RateLimited(claimed), receipts, sender.Transport);
        }
        return admitted;
    }

    /// <summary>
    /// Whose tokens a reading spends. Unverified, the device a payload names is only a claim, so each client has its own
    /// bucket per device it names: forgeries naming a device cannot use up the real device's rate. Verified, the device
    /// proved itself and has one bucket wherever it sends from.
    /// </summary>
    private DeviceBucket BucketOf(EthAddress device, Sender sender) => new(_options.VerifySignatures ? null : sender.Client, device);

    /// <summary>A device's token bucket, per client when the device is unverified (a struct key: nothing allocated per reading).</summary>
    private readonly record struct DeviceBucket(string? Client, EthAddress Device);

    private Rejection RateLimited(EthAddress device) =>
        new(ReasonCode.RateLimited, $"Device {device.ToLowerHex()} sent more than {_options.DeviceReadingsPerSecond} readings/s (burst {_options.DeviceBurst}); retry after {_options.RetryAfterSeconds} s.");

    private void Refuse(BatchItem item, Rejection rejection, Receipt[] receipts, string transport)
    {
        receipts[item.Index] = Receipt.Refused(item.Index, rejection, item.Reading?.Id);
        metrics.Refused(transport, rejection.Code.ToWire());
    }

    private static Receipt Unavailable(BatchItem item) =>
        new(item.Index, Receipt.UnavailableStatus, item.Reading!.Id, ReasonCode.Unavailable.ToWire(), "The broker did not acknowledge this reading in time; send it again (a reading sent twice is stored once).");

    private async Task<Delivery[]> ProduceAsync(List<OutgoingReading> outgoing, string transport, CancellationToken cancellation)
    {
        var started = Stopwatch.GetTimestamp();
        var deliveries = await producer.ProduceAsync(outgoing, transport, clock.GetUtcNow(), _options.AckTimeout, cancellation);
        metrics.ProduceLatency(Stopwatch.GetElapsedTime(started));
        return deliveries;
    }

    private Rejection? Check(SignedReading reading, EthAddress? topicDevice)
    {
        var device = reading.Content.Device;
        if (topicDevice is { } expected && expected != device)
            return new Rejection(ReasonCode.BadAddress, $"The topic names device {expected.ToLowerHex()} but the payload is from {device.ToLowerHex()}.");
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

/// <summary>Requests per client (IP address for HTTP, client id for MQTT), refused with 429 / a disconnect past the limit.</summary>
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
