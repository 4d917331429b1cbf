namespace Pipeline.Web.Charts;

/// <summary>One line of a chart: its label and a value (or a gap) per x.</summary>
public sealed record ChartSeries(string Label, IReadOnlyList<double?> Values);
