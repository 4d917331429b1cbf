using Pipeline.Core.Signals;

namespace Pipeline.Simulator.Models;

/// <summary>Where simulated devices live: cities with a typical altitude and a yearly mean temperature.</summary>
public sealed record Region(string Name, GeoPoint Center, double AltitudeM, double MeanTemperatureC, double TemperatureSwingC)
{
    public static IReadOnlyList<Region> All { get; } =
    [
        new("Amsterdam", new(52.370, 4.895), 0, 11, 4),
        new("Bremen", new(53.080, 8.800), 10, 10, 5),
        new("Berlin", new(52.520, 13.405), 40, 10.5, 6),
        new("Dublin", new(53.350, -6.260), 20, 10, 4),
        new("New York", new(40.713, -74.006), 10, 13, 6),
        new("Denver", new(39.739, -104.990), 1610, 10.5, 9),
    ];
}
