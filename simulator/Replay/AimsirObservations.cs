using Pipeline.Core.Signals;

namespace Pipeline.Simulator.Replay;

/// <summary>
/// Hourly Met Éireann observations as the aimsir17 package holds them, written to CSV (quoted strings, empty field for
/// missing), with the stations' coordinates and heights from aimsir17_stations.csv beside it. One device per station.
/// </summary>
internal static class AimsirObservations
{
    private const double MetresPerSecondPerKnot = 0.514444;

    // rain is the amount in the hour, so millimetres per hour; msl is mean sea-level pressure.
    public static readonly StationTable Table = new("aimsir17:", "station", "date",
    [
        new("temp", SignalCatalog.Weather.Temperature, celsius => celsius),
        new("rhum", SignalCatalog.Weather.Humidity, percent => percent),
        new("msl", SignalCatalog.Weather.Pressure, hectopascals => hectopascals),
        new("wdsp", SignalCatalog.Weather.WindSpeed, knots => knots * MetresPerSecondPerKnot),
        new("wddir", SignalCatalog.Weather.WindDirection, degrees => degrees),
        new("rain", SignalCatalog.Weather.PrecipitationRate, millimetres => millimetres),
    ], "aimsir17_stations.csv");

    public static bool RecognisesStations(string[] header) => header is ["station", "county", "height", "latitude", "longitude", ..];

    public static IReadOnlyList<TimedDevice> Read(string path, string fileName)
    {
        var stations = new Dictionary<string, IReadOnlyDictionary<string, string>>(StringComparer.Ordinal);
        var file = Table.StationsFileName;
        foreach (var row in RecordedText.CsvRows(Table.StationsPath(path), file, "station", "height", "latitude", "longitude"))
        {
            stations[row[0]] = new Dictionary<string, string>(StringComparer.Ordinal)
            {
                ["latitude"] = RecordedText.Invariant(RecordedText.Number(row[2], file, row.Line, "latitude")),
                ["longitude"] = RecordedText.Invariant(RecordedText.Number(row[3], file, row.Line, "longitude")),
                ["elevation"] = RecordedText.Invariant(RecordedText.Number(row[1], file, row.Line, "height")),
                ["model"] = "Met Éireann synoptic",
            };
        }
        return Table.Read(path, fileName, stations);
    }
}
