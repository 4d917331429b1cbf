using System.Diagnostics.Metrics;

namespace Pipeline.Infra.Metrics;

/// <summary>
/// Bucket boundaries for the pipeline's histograms. Without advice the exporter uses its millisecond-shaped
/// defaults (0, 5, 10, 25 … 10 000), which put every duration recorded in seconds into the first bucket.
/// </summary>
public static class HistogramBuckets
{
    public static readonly InstrumentAdvice<double> Seconds = new()
    {
        HistogramBucketBoundaries = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    };

    public static readonly InstrumentAdvice<long> BatchSizes = new()
    {
        HistogramBucketBoundaries = [1, 10, 50, 100, 250, 500, 1_000, 2_000, 5_000, 10_000],
    };
}
