using System.Text;
using Pipeline.Core.Envelope;
using Pipeline.Core.Signals;

namespace Pipeline.Cli.Simulator.Replay;

/// <summary>
/// Hourly Met Éireann observations as the aimsir17 package holds them, written to CSV (quoted strings, empty field for
/// missing), with the stations' coordinates and heights from aimsir17_stations.csv beside it. One device per station.
/// </summary>
internal static class AimsirObservations
{
    public const string StationsFileName = "aimsir17_stations.csv";
    private const string SourcePrefix = "aimsir17:";
    private const double MetresPerSecondPerKnot = 0.514444;

    private static readonly string[] Columns = ["station", "date", "rain", "temp", "rhum", "msl", "wdsp", "wddir"];

    // rain is the amount in the hour, so millimetres per hour; msl is mean sea-level pressure.
    private static readonly (string Column, string Signal, Func<double, double> Convert)[] Mapped =
    [
        ("temp", SignalCatalog.Weather.Temperature, celsius => celsius),
        ("rhum", SignalCatalog.Weather.Humidity, percent => percent),
        ("msl", SignalCatalog.Weather.Pressure, hectopascals => hectopascals),
        ("wdsp", SignalCatalog.Weather.WindSpeed, knots => knots * MetresPerSecondPerKnot),
        ("wddir", SignalCatalog.Weather.WindDirection, degrees => degrees),
        ("rain", SignalCatalog.Weather.PrecipitationRate, millimetres => millimetres),
    ];

    public static bool Recognises(string[] header) => Array.TrueForAll(Columns, header.Contains);

    public static bool RecognisesStations(string[] header) => header is ["station", "county", "height", "latitude", "longitude", ..];

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
                // R's write.csv wrote NA as empty here; "NA" is accepted too in case a file is re-exported with defaults.
                if (text.Length == 0 || text == "NA") continue;
                signals[Mapped[i].Signal] = Mapped[i].Convert(RecordedText.Number(text, fileName, lineNumber, Mapped[i].Column));
            }
            if (signals.Count == 0) continue;

            var station = fields[positions[0]];
            if (!devices.TryGetValue(station, out var device))
            {
                if (!stations.TryGetValue(station, out var metadata))
                    throw new InvalidDataException($"{fileName} line {lineNumber}: station '{station}' is not in {StationsFileName}.");
                devices[station] = device = new TimedDevice(SourcePrefix + station, DeviceKind.Weather, metadata, []);
                order.Add(device);
            }
            device.Samples.Add(new TimedSample(RecordedText.Utc(fields[positions[1]], fileName, lineNumber, "date"), signals, []));
        }
        return order;
    }

    private static Dictionary<string, IReadOnlyDictionary<string, string>> ReadStations(string path, string fileName)
    {
        var stationsPath = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, StationsFileName);
        if (!File.Exists(stationsPath))
            throw new FileNotFoundException($"{fileName} needs the station coordinates in {StationsFileName} beside it ({stationsPath}).", stationsPath);

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
                positions = RecordedText.ColumnPositions(fields, StationsFileName, "station", "height", "latitude", "longitude");
                continue;
            }
            stations[fields[positions[0]]] = new Dictionary<string, string>(StringComparer.Ordinal)
            {
                ["latitude"] = RecordedText.Invariant(RecordedText.Number(fields[positions[2]], StationsFileName, lineNumber, "latitude")),
                ["longitude"] = RecordedText.Invariant(RecordedText.Number(fields[positions[3]], StationsFileName, lineNumber, "longitude")),
                ["elevation"] = RecordedText.Invariant(RecordedText.Number(fields[positions[1]], StationsFileName, lineNumber, "height")),
                ["model"] = "Met Éireann synoptic",
            };
        }
        return stations;
    }
}
