using Pipeline.Core.Envelope;
using Pipeline.Core.Signals;

namespace Pipeline.Streams.Processing;

/// <summary>The processors' settings, bound from the "Streams" section.</summary>
public sealed class ProcessorOptions
{
    public const string Section = "Streams";

    /// <summary>The consumer group: instances in one group share the partitions of telemetry.raw.v1.</summary>
    public string GroupId { get; set; } = "depin-streams";

    /// <summary>Most messages per batch, and the longest wait for a batch to fill before it is processed.</summary>
    public int BatchSize { get; set; } = 2_000;
    public TimeSpan BatchWait { get; set; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Threads recovering signatures in a batch (default: every core).</summary>
    public int Parallelism { get; set; } = Environment.ProcessorCount;

    public EnvelopeLimits Limits { get; set; } = EnvelopeLimits.Default;

    public PlausibilityLimits Plausibility { get; set; } = PlausibilityLimits.Default;
}
