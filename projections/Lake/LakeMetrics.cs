using System.Diagnostics.Metrics;
using Pipeline.Core.Events;

namespace Pipeline.Projections.Lake;

/// <summary>What the projector counts: rows and files written, and how far the lake trails the processors.</summary>
public sealed class LakeMetrics
{
    public const string MeterName = "Pipeline.Projections";

    private readonly Counter<long> _rows;
    private readonly Counter<long> _files;
    private readonly Counter<long> _compactionFailures;
    private readonly TimeProvider _clock;
    private double _lagSeconds;

    public LakeMetrics(IMeterFactory meters, TimeProvider clock)
    {
        _clock = clock;
        var meter = meters.Create(MeterName);
        _rows = meter.CreateCounter<long>("pipeline.lake.rows", "{row}", "Rows written to the lake, by dataset.");
        _files = meter.CreateCounter<long>("pipeline.lake.files", "{file}", "Parquet files written.");
        _compactionFailures = meter.CreateCounter<long>("pipeline.lake.compaction.failures", "{merge}", "Compaction merges that failed and published nothing, by dataset.");
        meter.CreateObservableGauge("pipeline.lake.lag", () => Volatile.Read(ref _lagSeconds), "s", "From the edge receiving the newest projected reading until it was queryable.");
    }

    public void CompactionFailed(string dataset) => _compactionFailures.Add(1, new KeyValuePair<string, object?>("dataset", dataset));

    public void Projected(IReadOnlyList<LakeFile> files, FeedEvent? newest)
    {
        foreach (var file in files) _rows.Add(file.Rows, new KeyValuePair<string, object?>("dataset", file.Dataset));
        _files.Add(files.Count);
        var receivedAt = newest?.Data switch
        {
            ReadingAccepted a => a.ReceivedAt,
            ReadingRejected r => r.ReceivedAt,
            _ => (DateTimeOffset?)null,
        };
        if (receivedAt is { } time) Volatile.Write(ref _lagSeconds, (_clock.GetUtcNow() - time).TotalSeconds);
    }
}
