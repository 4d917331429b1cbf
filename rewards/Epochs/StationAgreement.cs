using Pipeline.Core.Crypto;

namespace Pipeline.Rewards.Epochs;

/// <summary>
/// How far each weather station agrees with its neighbours, in ppm: of the signals the policy names that the station
/// and enough neighbours report, the share on which the station's mean lies within the tolerance of their median.
/// A station with no such signal gets the rule's unjudged value. Distances use only IEEE-754 +, −, ×, ÷ (exactly rounded on
/// every machine) and a cosine series built from them, so the neighbour sets are the same wherever it is computed.
/// </summary>
public static class StationAgreement
{
    /// <summary>Mean Earth radius (IUGG) times π/180, over 10^6: metres per microdegree of latitude.</summary>
    private const double MetresPerMicrodegree = 6_371_008.8 * Math.PI / 180 / 1e6;

    public static Dictionary<EthAddress, long> Compute(StationAgreementRule rule, IReadOnlyList<StationEpochMeans> stations)
    {
        var radius = rule.RadiusMeters / MetresPerMicrodegree;
        var agreement = new Dictionary<EthAddress, long>(stations.Count);
        foreach (var station in stations)
        {
            var neighbours = stations.Where(other => other.Station != station.Station && Distance(station, other) <= radius).ToList();
            long compared = 0, agreed = 0;
            foreach (var (signal, tolerance) in rule.ToleranceMilli)
            {
                if (!station.MeansMilli.TryGetValue(signal, out var mean)) continue;
                var others = neighbours.Where(n => n.MeansMilli.ContainsKey(signal)).Select(n => n.MeansMilli[signal]).Order().ToList();
                if (others.Count < rule.MinNeighbours) continue;
                compared++;
                // Twice the distance to the median, so an even count's median (the two middle values' mean) needs no rounding.
                var middle = others.Count / 2;
                var twiceMedian = others.Count % 2 == 1 ? 2 * others[middle] : others[middle - 1] + others[middle];
                if (Math.Abs(2 * mean - twiceMedian) <= 2 * tolerance) agreed++;
            }
            agreement[station.Station] = compared == 0 ? rule.UnjudgedPpm : agreed * RewardPolicy.Ppm / compared;
        }
        return agreement;
    }

    /// <summary>Equirectangular distance in microdegrees of latitude: exact enough within a radius of tens of kilometres.</summary>
    private static double Distance(StationEpochMeans a, StationEpochMeans b)
    {
        double northing = a.LatitudeMicrodegrees - b.LatitudeMicrodegrees;
        double longitude = Math.Abs(a.LongitudeMicrodegrees - b.LongitudeMicrodegrees);
        if (longitude > 180e6) longitude = 360e6 - longitude;
        var meanLatitude = (a.LatitudeMicrodegrees + b.LatitudeMicrodegrees) / 2e6 * (Math.PI / 180);
        var easting = longitude * Cosine(meanLatitude);
        return Math.Sqrt(easting * easting + northing * northing);
    }

    /// <summary>cos x for |x| ≤ π/2 by its Taylor series (error below 1e-16): Math.Cos may differ in the last bit between platforms.</summary>
    private static double Cosine(double x)
    {
        double sum = 1, term = 1, square = x * x;
        for (var k = 1; k <= 14; k++)
        {
            term *= -square / ((2 * k - 1) * (2 * k));
            sum += term;
        }
        return sum;
    }
}
