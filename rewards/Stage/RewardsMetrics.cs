using System.Diagnostics.Metrics;

namespace Pipeline.Rewards.Stage;

/// <summary>What the rewards stage counts: epochs closed, reward files repaired, how long roots take to publish, the last epoch published.</summary>
public sealed class RewardsMetrics
{
    public const string MeterName = "Pipeline.Rewards";

    private readonly Counter<long> _closed;
    private readonly Counter<long> _filesRepaired;
    private readonly Histogram<double> _publishLatency;
    private long _lastPublished = -1;

    public RewardsMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(MeterName);
        _closed = meter.CreateCounter<long>("pipeline.rewards.epochs.closed", "{epoch}", "Epochs closed and calculated by this process.");
        _filesRepaired = meter.CreateCounter<long>("pipeline.rewards.files.repaired", "{file}", "Reward files missing or not hashing to their recorded content hash, computed again from the epoch's record and written back.");
        _publishLatency = meter.CreateHistogram<double>("pipeline.rewards.publish.latency", "s", "From an epoch's calculation until its root was confirmed on chain.");
        meter.CreateObservableGauge("pipeline.rewards.last.published.epoch", () => Interlocked.Read(ref _lastPublished), "{epoch}", "The latest epoch whose root is confirmed on chain (-1: none yet).");
    }

    public void Closed() => _closed.Add(1);

    public void FileRepaired() => _filesRepaired.Add(1);

    public void Published(long epoch, TimeSpan latency)
    {
        _publishLatency.Record(latency.TotalSeconds);
        long seen;
        do seen = Interlocked.Read(ref _lastPublished);
        while (epoch > seen && Interlocked.CompareExchange(ref _lastPublished, epoch, seen) != seen);
    }
}
