using Pipeline.Core.Signals;

namespace Pipeline.Simulator.Replay;

/// <summary>
/// nycflights13's hourly ASOS weather for the three New York airports (comma-separated, US units, NA for missing),
/// with the airports' coordinates from nycflights13_stations.csv beside it. One station per airport code.
/// </summary>
internal static class NycFlightsWeather
{
    private const double MetresPerSecondPerMph = 0.44704;
    private const double MillimetresPerInch = 25.4;
    private const double MetresPerFoot = 0.3048;

    // time_hour is UTC; the year..hour columns are New York local time, ambiguous when clocks go back.
    // precip is the amount in the hour, so inches per hour.
    public static readonly StationTable Table = new("nycflights13:", "origin", "time_hour",
    [
        new("temp", SignalCatalog.Weather.Temperature, fahrenheit => (fahrenheit - 32) * 5 / 9),
        new("humid", SignalCatalog.Weather.Humidity, percent => percent),
        new("wind_dir", SignalCatalog.Weather.WindDirection, degrees => degrees),
        new("wind_speed", SignalCatalog.Weather.WindSpeed, mph => mph * MetresPerSecondPerMph),
        new("wind_gust", SignalCatalog.Weather.WindGust, mph => mph * MetresPerSecondPerMph),
        new("precip", SignalCatalog.Weather.PrecipitationRate, inches => inches * MillimetresPerInch),
        new("pressure", SignalCatalog.Weather.Pressure, hectopascals => hectopascals),
    ], "nycflights13_stations.csv");

    public static bool RecognisesStations(string[] header) => header is ["faa", "name", "lat", "lon", "alt", ..];

    public static IReadOnlyList<TimedDevice> Read(string path, string fileName)
    {
        var stations = new Dictionary<string, IReadOnlyDictionary<string, string>>(StringComparer.Ordinal);
        var file = Table.StationsFileName;
        foreach (var row in RecordedText.CsvRows(Table.StationsPath(path), file, "faa", "lat", "lon", "alt"))
        {
            stations[row[0]] = new Dictionary<string, string>(StringComparer.Ordinal)
            {
                ["latitude"] = RecordedText.Invariant(RecordedText.Number(row[1], file, row.Line, "lat")),
                ["longitude"] = RecordedText.Invariant(RecordedText.Number(row[2], file, row.Line, "lon")),
                // Whole feet in the source: a decimetre is all the precision the metres can honestly claim.
                ["elevation"] = RecordedText.Invariant(Math.Round(RecordedText.Number(row[3], file, row.Line, "alt") * MetresPerFoot, 1)),
                ["model"] = "ASOS",
            };
        }
        return Table.Read(path, fileName, stations);
    }
}
