using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Pipeline.Marketplace;

/// <summary>What the marketplace measures: where a query's or an export's time goes, phase by phase, and the live feeds open.</summary>
public sealed class MarketMetrics
{
    public const string MeterName = "Pipeline.Marketplace";
    public const string QueryPhaseInstrument = "pipeline.market.query.phase";
    public const string ExportPhaseInstrument = "pipeline.market.export.phase";

    private readonly Histogram<double> _phases;
    private readonly Histogram<double> _exportPhases;
    private readonly UpDownCounter<long> _feeds;
    private readonly Counter<long> _feedRows;

    public MarketMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(MeterName);
        _phases = meter.CreateHistogram<double>(QueryPhaseInstrument, "s", "Time a query spent in each phase: account, lake, sandbox, validate, execute, attribute, charge.");
        _exportPhases = meter.CreateHistogram<double>(ExportPhaseInstrument, "s", "Time an export spent in each phase: plan, queue, write, describe, sign, attribute, charge; and quality, the manifest's quality report computed beside write.");
        _feeds = meter.CreateUpDownCounter<long>("pipeline.market.feeds", "{feed}", "Live feeds open.");
        _feedRows = meter.CreateCounter<long>("pipeline.market.feed.rows", "{row}", "Rows sent over live feeds.");
    }

    /// <summary>Times one query's phases: each call to <see cref="Phases.End"/> records the time since the previous one.</summary>
    public Phases StartQuery() => new(_phases);

    /// <summary>Times one export's phases, as <see cref="StartQuery"/> does a query's.</summary>
    public Phases StartExport() => new(_exportPhases);

    public void FeedOpened() => _feeds.Add(1);
    public void FeedClosed() => _feeds.Add(-1);
    public void FeedSent(long rows) => _feedRows.Add(rows);

    public sealed class Phases(Histogram<double> phases)
    {
        private long _start = Stopwatch.GetTimestamp();

        public void End(string phase)
        {
            var now = Stopwatch.GetTimestamp();
            phases.Record(Stopwatch.GetElapsedTime(_start, now).TotalSeconds, new KeyValuePair<string, object?>("phase", phase));
            _start = now;
        }
    }
}
