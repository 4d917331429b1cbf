using System.Diagnostics.Metrics;
using Pipeline.Infra.Metrics;

namespace Pipeline.Streams.Processing;

/// <summary>What the processors count: messages by verdict, rejections by reason, batch sizes and times, consumer lag, database retries, readings lost to Kafka's retention.</summary>
public sealed class StreamsMetrics
{
    public const string MeterName = "Pipeline.Streams";

    private readonly Counter<long> _messages;
    private readonly Counter<long> _rejected;
    private readonly Counter<long> _deadLetters;
    private readonly Counter<long> _retries;
    private readonly Counter<long> _lostToRetention;
    private readonly Histogram<double> _batchDuration;
    private readonly Histogram<long> _batchSize;
    private long _lag;

    public StreamsMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(MeterName);
        _messages = meter.CreateCounter<long>("pipeline.streams.messages", "{message}", "Messages processed, by verdict: accepted, duplicate, rejected_signed, rejected_unsigned.");
        _rejected = meter.CreateCounter<long>("pipeline.streams.rejected", "{reading}", "Rejected readings by reason code.");
        _deadLetters = meter.CreateCounter<long>("pipeline.streams.dead_letters.written", "{record}", "Dead letters written to telemetry.rejected.v1.");
        _retries = meter.CreateCounter<long>("pipeline.streams.retries", "{attempt}", "Steps that failed on the database and were tried again, by step: offsets, lookup, record.");
        _lostToRetention = meter.CreateCounter<long>("pipeline.streams.readings.lost_to_retention", "{message}", "Messages the broker deleted (retention) before the processors read them, by topic and partition: never recorded, never dead-lettered.");
        _batchDuration = meter.CreateHistogram<double>("pipeline.streams.batch.duration", "s", "From a batch's last poll to its events committed.", advice: HistogramBuckets.Seconds);
        _batchSize = meter.CreateHistogram<long>("pipeline.streams.batch.size", "{message}", "Messages per batch.", advice: HistogramBuckets.BatchSizes);
        meter.CreateObservableGauge("pipeline.streams.lag", () => Interlocked.Read(ref _lag), "{message}", "Messages in assigned partitions not yet processed.");
    }

    public void Processed(Verdict verdict, int count) => _messages.Add(count, new KeyValuePair<string, object?>("verdict", Name(verdict)));
    public void Rejected(string reason) => _rejected.Add(1, new KeyValuePair<string, object?>("reason", reason));
    public void DeadLettersWritten(int count) => _deadLetters.Add(count);
    public void Retried(string step) => _retries.Add(1, new KeyValuePair<string, object?>("step", step));
    public void Batch(int size, TimeSpan duration)
    {
        _batchSize.Record(size);
        _batchDuration.Record(duration.TotalSeconds);
    }
    public void LostToRetention(string topic, int partition, long count) =>
        _lostToRetention.Add(count, new KeyValuePair<string, object?>("topic", topic), new KeyValuePair<string, object?>("partition", partition));
    public void Lag(long lag) => Interlocked.Exchange(ref _lag, lag);

    private static string Name(Verdict verdict) => verdict switch
    {
        Verdict.Accepted => "accepted",
        Verdict.Duplicate => "duplicate",
        Verdict.RejectedSigned => "rejected_signed",
        _ => "rejected_unsigned",
    };
}
