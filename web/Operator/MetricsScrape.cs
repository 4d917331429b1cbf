using System.Globalization;

namespace Pipeline.Web.Operator;

/// <summary>One Prometheus text scrape, read by metric name and one label: the same numbers Prometheus would store.</summary>
public sealed class MetricsScrape
{
    private readonly List<(string Name, string Labels, double Value)> _samples = [];

    public MetricsScrape(string text)
    {
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] == '#') continue;
            string name, labels, rest;
            var brace = line.IndexOf('{');
            if (brace > 0)
            {
                var close = line.LastIndexOf('}');
                if (close < brace) continue;
                (name, labels, rest) = (line[..brace], line[(brace + 1)..close], line[(close + 1)..]);
            }
            else
            {
                var space = line.IndexOf(' ');
                if (space <= 0) continue;
                (name, labels, rest) = (line[..space], "", line[(space + 1)..]);
            }
            // The value, then perhaps a timestamp.
            var value = rest.Trim().Split(' ')[0];
            if (double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var number)) _samples.Add((name, labels, number));
        }
    }

    /// <summary>The sum over every label set of <paramref name="name"/>, or null when the scrape has none (the stage does not run here).</summary>
    public double? Sum(string name)
    {
        double? total = null;
        foreach (var s in _samples) if (s.Name == name) total = (total ?? 0) + s.Value;
        return total;
    }

    /// <summary>Sums of <paramref name="name"/> grouped by the value of one label.</summary>
    public Dictionary<string, double> By(string name, string label)
    {
        var groups = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var s in _samples)
        {
            if (s.Name != name || Label(s.Labels, label) is not { } key) continue;
            groups[key] = groups.GetValueOrDefault(key) + s.Value;
        }
        return groups;
    }

    private static string? Label(string labels, string label)
    {
        var start = labels.IndexOf(label + "=\"", StringComparison.Ordinal);
        while (start > 0 && labels[start - 1] is not (',' or ' ')) start = labels.IndexOf(label + "=\"", start + 1, StringComparison.Ordinal);
        if (start < 0) return null;
        start += label.Length + 2;
        var end = labels.IndexOf('"', start);
        return end < 0 ? null : labels[start..end];
    }
}
