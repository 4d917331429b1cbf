using System.Diagnostics.Metrics;
using Pipeline.Infra.Metrics;
using Pipeline.Ingest.Gateway;

namespace Pipeline.Ingest;

/// <summary>What the edge counts: readings in, accepted (acknowledged by the broker), duplicates, refused by reason, produce latency, in-flight bytes.</summary>
public sealed class IngestMetrics
{
    public const string MeterName = "Pipeline.Ingest";

    private readonly Counter<long> _received;
    private readonly Counter<long> _accepted;
    private readonly Counter<long> _refused;
    private readonly Counter<long> _duplicate;
    private readonly Counter<long> _mqttRefused;
    private readonly Histogram<double> _produceLatency;

    public IngestMetrics(IMeterFactory meters, IReadingBroker producer, BacklogGate backlog)
    {
        var meter = meters.Create(MeterName);
        _received = meter.CreateCounter<long>("pipeline.ingest.readings.received", "{reading}", "Readings that reached the edge.");
        _accepted = meter.CreateCounter<long>("pipeline.ingest.readings.accepted", "{reading}", "Readings the broker acknowledged.");
        _refused = meter.CreateCounter<long>("pipeline.ingest.readings.refused", "{reading}", "Readings refused at the edge, by reason code.");
        _mqttRefused = meter.CreateCounter<long>("pipeline.ingest.mqtt.connections.refused", "{connection}", "MQTT connections refused or closed before or at login, by why (rate_limited, too_many_connections, too_large, bad_login, login_reused, …).");
        _duplicate = meter.CreateCounter<long>("pipeline.ingest.readings.duplicate", "{reading}", "Readings answered duplicate: the broker already acknowledged them to this edge.");
        _produceLatency = meter.CreateHistogram<double>("pipeline.ingest.produce.duration", "s", "From handing a request's readings to the producer until the broker acknowledged all of them.", advice: HistogramBuckets.Seconds);
        meter.CreateObservableGauge("pipeline.ingest.inflight.bytes", () => producer.InFlightBytes, "By", "Bytes handed to the producer and not yet acknowledged.");
        meter.CreateObservableGauge("pipeline.ingest.backlog.bytes",
            () => backlog.Backlog().Select(p => new Measurement<long>(p.Bytes, new KeyValuePair<string, object?>("partition", p.Partition))), "By",
            "Estimated bytes per partition of the raw topic the processors have not processed yet.");
        meter.CreateObservableGauge("pipeline.ingest.backlog.limit.bytes", () => backlog.LimitBytes ?? -1, "By",
            "Unprocessed bytes a partition may hold before the edge refuses readings (-1: no limit).");
    }

    public void Received(string transport, int count) => _received.Add(count, new KeyValuePair<string, object?>("transport", transport));
    public void Accepted(string transport, int count) => _accepted.Add(count, new KeyValuePair<string, object?>("transport", transport));
    public void MqttConnectionRefused(string why) => _mqttRefused.Add(1, new KeyValuePair<string, object?>("why", why));
    public void Duplicate(string transport) => _duplicate.Add(1, new KeyValuePair<string, object?>("transport", transport));
    public void Refused(string transport, string reason, int count = 1) =>
        _refused.Add(count, new KeyValuePair<string, object?>("transport", transport), new KeyValuePair<string, object?>("reason", reason));
    public void ProduceLatency(TimeSpan elapsed) => _produceLatency.Record(elapsed.TotalSeconds);
}
