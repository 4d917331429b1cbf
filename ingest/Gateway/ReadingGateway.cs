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
}

/// <summary>
/// The edge's checks and hand-over, shared by HTTP and MQTT: only cheap checks here (shape, address, optionally the
/// signature, the device's rate), then every surviving reading to the broker, each receipt saying what became of it.
/// </summary>
public sealed class ReadingGateway(ReadingProducer producer, IngestMetrics metrics, IOptions<IngestOptions> options, TimeProvider clock) : IDisposable
{
    private readonly IngestOptions _options = options.Value;

    private readonly PartitionedRateLimiter<string> _devices = TokenBuckets.PerKey(options.Value.DeviceReadingsPerSecond, options.Value.DeviceBurst);

    public async Task<SubmitResult> SubmitAsync(IReadOnlyList<BatchItem> items, string transport, EthAddress? topicDevice, CancellationToken cancellation)
    {
        metrics.Received(transport, items.Count);
        var receipts = new Receipt[items.Count];
        var outgoing = new List<OutgoingReading>(items.Count);
        var outgoingIndex = new List<int>(items.Count);
        long bytes = 0;

        foreach (var item in items)
        {
            var rejection = item.Rejection ?? Check(item.Reading!, topicDevice);
            if (rejection is not null)
            {
                receipts[item.Index] = Receipt.Refused(item.Index, rejection, item.Reading?.Id);
                metrics.Refused(transport, rejection.Code.ToWire());
                continue;
            }
            outgoing.Add(new OutgoingReading(item.Reading!.Content.Device.ToLowerHex(), item.Raw));
            outgoingIndex.Add(item.Index);
            bytes += item.Raw.Length;
        }

        if (outgoing.Count > 0)
        {
            var deliveries = producer.TryReserve(bytes)
                ? await ProduceAsync(outgoing, transport, cancellation)
                : new Delivery[outgoing.Count];
            for (var i = 0; i < outgoing.Count; i++)
            {
                var index = outgoingIndex[i];
                var id = items[index].Reading!.Id;
                receipts[index] = deliveries[i] == Delivery.Acknowledged
                    ? new Receipt(index, Receipt.AcceptedStatus, id)
                    : new Receipt(index, Receipt.UnavailableStatus, id, ReasonCode.Unavailable.ToWire(), "The broker did not acknowledge this reading in time; send it again (a reading sent twice is stored once).");
            }
            var accepted = deliveries.Count(d => d == Delivery.Acknowledged);
            metrics.Accepted(transport, accepted);
            if (accepted < outgoing.Count) metrics.Refused(transport, ReasonCode.Unavailable.ToWire(), outgoing.Count - accepted);
        }
        return new SubmitResult(receipts);
    }

    /// <summary>Sends a refused MQTT reading, with its reason, to the dead-letter topic.</summary>
    public Task DeadLetterAsync(BatchItem item, Receipt receipt, string source, CancellationToken cancellation) =>
        producer.DeadLetterAsync(item.Reading?.Content.Device.ToLowerHex(), item.Raw, receipt.Reason!, receipt.Detail!, source, cancellation);

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
        if (_options.VerifySignatures)
        {
            var check = reading.TryRecoverSigner(out var signer);
            if (check != SignatureCheck.Valid)
                return new Rejection(ReasonCode.BadSignature, $"The signature does not verify ({check}); sign the payload bytes with EIP-191 personal_sign.");
            if (signer != device)
                return new Rejection(ReasonCode.SignerMismatch, $"Signed by {signer.ToLowerHex()}, not by the device {device.ToLowerHex()}.");
        }
        using var lease = _devices.AttemptAcquire(device.ToLowerHex());
        return lease.IsAcquired
            ? null
            : new Rejection(ReasonCode.RateLimited, $"Device {device.ToLowerHex()} sent more than {_options.DeviceReadingsPerSecond} readings/s (burst {_options.DeviceBurst}); retry after {_options.RetryAfterSeconds} s.");
    }

    public void Dispose() => _devices.Dispose();
}

/// <summary>Requests per client (IP address for HTTP, client id for MQTT), refused with 429 / a disconnect past the limit.</summary>
public sealed class ClientRateLimiter(IOptions<IngestOptions> options) : IDisposable
{
    private readonly PartitionedRateLimiter<string> _clients = TokenBuckets.PerKey(options.Value.ClientRequestsPerSecond, options.Value.ClientBurst);

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
    public static PartitionedRateLimiter<string> PerKey(int perSecond, int burst) => PartitionedRateLimiter.Create<string, string>(key =>
        RateLimitPartition.GetTokenBucketLimiter(key, _ => new TokenBucketRateLimiterOptions
        {
            TokenLimit = burst,
            TokensPerPeriod = perSecond,
            ReplenishmentPeriod = TimeSpan.FromSeconds(1),
            QueueLimit = 0,
            AutoReplenishment = true,
        }));
}
