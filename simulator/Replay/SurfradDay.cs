using System.Text;
using System.Text.RegularExpressions;
using Pipeline.Core.Envelope;
using Pipeline.Core.Signals;

namespace Pipeline.Simulator.Replay;

/// <summary>
/// One day of a SURFRAD-format station file: a line with the station name, a line "lat lon elevation m version n",
/// then one whitespace-separated row per minute (UTC). One station per file.
/// </summary>
internal static partial class SurfradDay
{
    private const string SourcePrefix = "surfrad:";
    private const double Missing = -9999.9;

    // The fixed row layout: eight time/geometry columns, then each measurement followed by its QC flag column.
    private static readonly string[] Measurements =
    [
        "dw_solar", "uw_solar", "direct_n", "diffuse", "dw_ir", "dw_casetemp", "dw_dometemp", "uw_ir", "uw_casetemp",
        "uw_dometemp", "uvb", "par", "netsolar", "netir", "totalnet", "temp", "rh", "windspd", "winddir", "pressure",
    ];
    private const int LeadingColumns = 8;
    private static readonly int FieldsPerRow = LeadingColumns + 2 * Measurements.Length;

    // Already in the pipeline's units; pressure is station pressure (not reduced to sea level).
    private static readonly (string Measurement, string Signal)[] Mapped =
    [
        ("dw_solar", SignalCatalog.Weather.SolarIrradiance),
        ("temp", SignalCatalog.Weather.Temperature),
        ("rh", SignalCatalog.Weather.Humidity),
        ("windspd", SignalCatalog.Weather.WindSpeed),
        ("winddir", SignalCatalog.Weather.WindDirection),
        ("pressure", SignalCatalog.Weather.Pressure),
    ];

    public static bool Recognises(string secondLine) => LocationLine().IsMatch(secondLine);

    public static IReadOnlyList<TimedDevice> Read(string path, string fileName)
    {
        var positions = new int[Mapped.Length];
        for (var i = 0; i < Mapped.Length; i++) positions[i] = LeadingColumns + 2 * Array.IndexOf(Measurements, Mapped[i].Measurement);

        string? stationName = null;
        Dictionary<string, string>? metadata = null;
        var samples = new List<TimedSample>();
        long lineNumber = 0;
        foreach (var line in File.ReadLines(path, Encoding.UTF8))
        {
            lineNumber++;
            if (lineNumber == 1)
            {
                stationName = line.Trim();
                continue;
            }
            if (lineNumber == 2)
            {
                metadata = Location(line, fileName);
                continue;
            }
            if (string.IsNullOrWhiteSpace(line)) continue;

            var fields = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length != FieldsPerRow)
                throw new InvalidDataException($"{fileName} line {lineNumber}: {fields.Length} fields, a SURFRAD row has {FieldsPerRow}.");

            var signals = new Dictionary<string, double>(StringComparer.Ordinal);
            for (var i = 0; i < Mapped.Length; i++)
            {
                var value = RecordedText.Number(fields[positions[i]], fileName, lineNumber, Mapped[i].Measurement);
                // Only the missing marker is dropped; QC flags are the station's opinion and travel no further.
                if (Math.Abs(value - Missing) < 0.05) continue;
                signals[Mapped[i].Signal] = value;
            }
            if (signals.Count == 0) continue;
            samples.Add(new TimedSample(Instant(fields, fileName, lineNumber), signals, []));
        }
        if (metadata is null) throw new InvalidDataException($"{fileName} ends before its SURFRAD header.");
        return [new TimedDevice(SourcePrefix + StationCode(fileName, stationName!), DeviceKind.Weather, metadata, samples)];
    }

    // year, day of year, month, day, hour, minute: the day of year is what the format counts in, so it is used.
    private static DateTimeOffset Instant(string[] fields, string fileName, long lineNumber)
    {
        var year = RecordedText.Integer(fields[0], fileName, lineNumber, "year");
        var dayOfYear = RecordedText.Integer(fields[1], fileName, lineNumber, "jday");
        var hour = RecordedText.Integer(fields[4], fileName, lineNumber, "hour");
        var minute = RecordedText.Integer(fields[5], fileName, lineNumber, "minute");
        if (year < 1 || year > 9999 || dayOfYear < 1 || dayOfYear > 366 || hour is < 0 or > 23 || minute is < 0 or > 59)
            throw new InvalidDataException($"{fileName} line {lineNumber}: {year} day {dayOfYear} {hour}:{minute} is not a time.");
        return new DateTimeOffset(year, 1, 1, 0, 0, 0, TimeSpan.Zero).AddDays(dayOfYear - 1).AddHours(hour).AddMinutes(minute);
    }

    private static Dictionary<string, string> Location(string line, string fileName)
    {
        var match = LocationLine().Match(line);
        if (!match.Success) throw new InvalidDataException($"{fileName} line 2: '{line.Trim()}' is not 'latitude longitude elevation m version n'.");
        var degreesWest = RecordedText.Number(match.Groups["longitude"].Value, fileName, 2, "longitude");
        return new Dictionary<string, string>(StringComparer.Ordinal)
        {
            ["latitude"] = RecordedText.Invariant(RecordedText.Number(match.Groups["latitude"].Value, fileName, 2, "latitude")),
            // The header counts longitude in degrees west; WGS84 (and the pipeline) count east, so west is negative.
            ["longitude"] = RecordedText.Invariant(-degreesWest),
            ["elevation"] = RecordedText.Invariant(RecordedText.Number(match.Groups["elevation"].Value, fileName, 2, "elevation")),
            ["model"] = "SURFRAD",
        };
    }

    /// <summary>
    /// The three-letter station code: from the file name, as NOAA ("slv16001.dat") or the recorded copy
    /// ("…_alamosa_slv_2016-01-01.dat") writes it; otherwise the station name from the header.
    /// </summary>
    private static string StationCode(string fileName, string stationName)
    {
        var match = StationCodeInFileName().Match(Path.GetFileNameWithoutExtension(fileName));
        return match.Success ? match.Groups["code"].Value.ToLowerInvariant() : stationName.ToLowerInvariant().Replace(' ', '_');
    }

    [GeneratedRegex(@"^\s*(?<latitude>-?\d+(?:\.\d+)?)\s+(?<longitude>-?\d+(?:\.\d+)?)\s+(?<elevation>-?\d+(?:\.\d+)?)\s*m\s+version\s+\d+\s*$", RegexOptions.CultureInvariant)]
    private static partial Regex LocationLine();

    [GeneratedRegex(@"(?:^|[_-])(?<code>[a-z]{3})(?:_\d{4}-\d{2}-\d{2}$|\d{5}$)", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase)]
    private static partial Regex StationCodeInFileName();
}
