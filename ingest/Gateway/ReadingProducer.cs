using System.Globalization;
using System.Text;
using Confluent.Kafka;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Pipeline.Core.Kafka;
using Pipeline.Infra.Kafka;

namespace Pipeline.Ingest.Gateway;

/// <summary>A reading on its way to telemetry.raw.v1: key = device address (lower-case hex), value = the envelope.</summary>
public readonly record struct OutgoingReading(string Device, ReadOnlyMemory<byte> Envelope);

public enum Delivery
{
    /// <summary>Not acknowledged within the wait; it may still arrive, so the client must retry (dedupe is by reading id).</summary>
    Pending,
    Acknowledged,
    Failed,
}

/// <summary>
/// What the gateway hands readings to: a budget of bytes in flight, and the broker behind it. The Kafka producer is the
/// one implementation; the gateway's decisions are tested against an in-memory one.
/// </summary>
public interface IReadingBroker
{
    /// <summary>Bytes handed over and not yet acknowledged.</summary>
    long InFlightBytes { get; }

    /// <summary>Reserves room for a request's record bytes; false when the budget is spent because the broker is slow or away.</summary>
    bool TryReserve(long bytes);

    /// <summary>Gives back reserved bytes that will not be produced after all.</summary>
    void Release(long bytes);

    /// <summary>Produces readings whose bytes were reserved, in order, waiting up to <paramref name="wait"/> for every acknowledgement.</summary>
    Task<Delivery[]> ProduceAsync(IReadOnlyList<OutgoingReading> readings, string transport, DateTimeOffset receivedAt, TimeSpan wait, CancellationToken cancellation);

    /// <summary>Sends a refused reading to the dead-letter topic.</summary>
    Task DeadLetterAsync(string? device, ReadOnlyMemory<byte> original, string reason, string detail, string source, CancellationToken cancellation);
}

/// <summary>
/// The process's one Kafka producer at the edge: idempotent, acks=all, batched and compressed. It bounds the bytes
/// handed over and not yet acknowledged, so a slow or absent broker turns into 503s rather than unbounded memory, and
/// tells the <see cref="BacklogGate"/> where each acknowledged record landed.
/// </summary>
public sealed class ReadingProducer : IReadingBroker, IDisposable
{
    /// <summary>
    /// What a record costs beyond its envelope: the key (42), the two headers (about 40), the record's framing and, for a
    /// batch of one, the batch header (61) and compression's own overhead. Counted whole, so a partition's bytes are never
    /// underestimated, even for an envelope that does not compress.
    /// </summary>
    public const int RecordOverheadBytes = 256;

    /// <summary>The bytes one reading is counted as, in flight and on the broker.</summary>
    public static long RecordBytes(int envelopeBytes) => envelopeBytes + RecordOverheadBytes;

    private readonly IProducer<string, byte[]> _producer;
    private readonly long _maxInFlightBytes;
    private readonly ILogger<ReadingProducer> _logger;
    private readonly string _rawTopic;
    private readonly string _rejectedTopic;
    private readonly BacklogGate _backlog;
    private long _inFlightBytes;

    public ReadingProducer(BacklogGate backlog, IOptions<KafkaOptions> kafka, IOptions<IngestOptions> options, ILogger<ReadingProducer> logger)
    {
        _logger = logger;
        _backlog = backlog;
        _maxInFlightBytes = options.Value.MaxInFlightBytes;
        _rawTopic = kafka.Value.RawTopic;
        _rejectedTopic = kafka.Value.RejectedTopic;
        var config = kafka.Value.ProducerConfig("depin-ingest");
        _producer = new ProducerBuilder<string, byte[]>(config)
            .SetLogHandler((_, message) => logger.Log(KafkaLog.Level(message.Level), "librdkafka {Facility}: {Message}", message.Facility, message.Message))
            .SetErrorHandler((_, error) => logger.Log(error.IsFatal ? LogLevel.Critical : LogLevel.Warning, "Kafka producer: {Reason} ({Code})", error.Reason, error.Code))
            .Build();
    }

    public long InFlightBytes => Interlocked.Read(ref _inFlightBytes);

    /// <summary>Reserves room for a request's record bytes (<see cref="RecordBytes"/>); false when the budget is spent because the broker is slow or away.</summary>
    public bool TryReserve(long bytes)
    {
        if (Interlocked.Add(ref _inFlightBytes, bytes) <= _maxInFlightBytes) return true;
        Interlocked.Add(ref _inFlightBytes, -bytes);
        return false;
    }

    /// <summary>Gives back reserved bytes that will not be produced after all.</summary>
    public void Release(long bytes) => Interlocked.Add(ref _inFlightBytes, -bytes);

    /// <summary>
    /// Produces readings whose bytes were reserved, in order, and waits up to <paramref name="wait"/> for every
    /// acknowledgement. Reserved bytes are released as each delivery report arrives, however late.
    /// </summary>
    public async Task<Delivery[]> ProduceAsync(IReadOnlyList<OutgoingReading> readings, string transport, DateTimeOffset receivedAt, TimeSpan wait, CancellationToken cancellation)
    {
        var outcomes = new Delivery[readings.Count];
        if (readings.Count == 0) return outcomes;
        var batch = new PendingBatch(outcomes);
        var receivedAtHeader = Encoding.ASCII.GetBytes(receivedAt.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture));
        var transportHeader = Encoding.ASCII.GetBytes(transport);
        for (var i = 0; i < readings.Count; i++)
        {
            var index = i;
            var size = RecordBytes(readings[i].Envelope.Length);
            var message = new Message<string, byte[]>
            {
                Key = readings[i].Device,
                Value = readings[i].Envelope.ToArray(),
                Headers = new Headers { { HeaderNames.ReceivedAt, receivedAtHeader }, { HeaderNames.Transport, transportHeader } },
            };
            try
            {
                _producer.Produce(_rawTopic, message, report =>
                {
                    // On the broker before it leaves the in-flight count: in between it would be counted nowhere.
                    if (!report.Error.IsError) _backlog.Delivered(report.Partition.Value, report.Offset.Value, size);
                    Interlocked.Add(ref _inFlightBytes, -size);
                    batch.Complete(index, report.Error.IsError ? Delivery.Failed : Delivery.Acknowledged);
                });
            }
            catch (ProduceException<string, byte[]> e)
            {
                // Refused before queueing (local queue full, fatal producer state): nothing was handed over.
                Interlocked.Add(ref _inFlightBytes, -size);
                batch.Complete(index, Delivery.Failed);
                _logger.LogWarning("Produce refused locally: {Reason}", e.Error.Reason);
            }
        }
        try
        {
            await batch.Done.WaitAsync(wait, cancellation);
        }
        catch (TimeoutException)
        {
            // Unacknowledged readings stay Pending: the client is told to retry.
        }
        lock (outcomes) return (Delivery[])outcomes.Clone();
    }

    /// <summary>Records a reading refused at the edge where no HTTP response can carry the reason (MQTT).</summary>
    public async Task DeadLetterAsync(string? device, ReadOnlyMemory<byte> original, string reason, string detail, string source, CancellationToken cancellation)
    {
        var message = new Message<string, byte[]>
        {
            Key = device!,
            Value = original.ToArray(),
            Headers = new Headers
            {
                { HeaderNames.Reason, Encoding.UTF8.GetBytes(reason) },
                { HeaderNames.Detail, Encoding.UTF8.GetBytes(detail) },
                { HeaderNames.Source, Encoding.UTF8.GetBytes(source) },
            },
        };
        await _producer.ProduceAsync(_rejectedTopic, message, cancellation);
    }

    private int _disposed;

    /// <summary>Flushes what is queued before the process exits: graceful shutdown loses nothing it acknowledged.</summary>
    public void Dispose()
    {
        // The container disposes it once as itself and once as the IReadingBroker it also serves as.
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        var left = _producer.Flush(TimeSpan.FromSeconds(10));
        if (left > 0) _logger.LogWarning("{Count} readings were still unacknowledged at shutdown; their senders were not told they were accepted", left);
        _producer.Dispose();
    }

    private sealed class PendingBatch(Delivery[] outcomes)
    {
        private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _remaining = outcomes.Length;

        public Task Done => _done.Task;

        public void Complete(int index, Delivery delivery)
        {
            lock (outcomes) outcomes[index] = delivery;
            if (Interlocked.Decrement(ref _remaining) == 0) _done.TrySetResult();
        }
    }
}
