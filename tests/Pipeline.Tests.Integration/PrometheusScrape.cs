using System.Globalization;

namespace Pipeline.Tests.Integration;

/// <summary>One scrape of a host's /metrics in the Prometheus text format, read by sample name and labels.</summary>
public sealed class PrometheusScrape(string text)
{
    public static async Task<PrometheusScrape> FromAsync(HttpClient host) => new(await host.GetStringAsync("/metrics"));

    /// <summary>
    /// The sample's value once it is <paramref name="expected"/>, or the last one seen after 10 s: the exporter serves a
    /// cached scrape for a moment, so a count that just rose can still read as before.
    /// </summary>
    public static async Task<double> ValueOnceAsync(HttpClient host, string name, double expected)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            var scrape = await FromAsync(host);
            var value = scrape.Has(name) ? scrape.Value(name) : double.NaN;
            if (value == expected || DateTime.UtcNow > deadline) return value;
            await Task.Delay(100);
        }
    }

    /// <summary>The value of the one sample with this name whose labels include all of <paramref name="labels"/> (as written, e.g. <c>reason="stale"</c>).</summary>
    public double Value(string name, params string[] labels)
    {
        var matches = Samples(name).Where(s => labels.All(s.Labels.Contains)).ToList();
        if (matches.Count != 1) throw new InvalidOperationException($"{matches.Count} samples of {name} with {string.Join(", ", labels)}; the scrape has: {string.Join(" | ", Samples(name).Select(s => s.Labels))}");
        return matches[0].Value;
    }

    public bool Has(string name, params string[] labels) => Samples(name).Any(s => labels.All(s.Labels.Contains));

    private IEnumerable<(string Labels, double Value)> Samples(string name) =>
        from line in text.Split('\n')
        where line.StartsWith(name + "{", StringComparison.Ordinal) || line.StartsWith(name + " ", StringComparison.Ordinal)
        let space = line.LastIndexOf(' ')
        let value = line[(space + 1)..]
        select (line[name.Length..space], value == "+Inf" ? double.PositiveInfinity : double.Parse(value, CultureInfo.InvariantCulture));
}
