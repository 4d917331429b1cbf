using System.Text;
using System.Text.RegularExpressions;
using Pipeline.Core.Envelope;
using Pipeline.Core.Signals;

namespace Pipeline.Simulator.Replay;

/// <summary>
/// A Car Scanner app log in long format: one row per value, "SECONDS";"PID";"VALUE";"UNITS", every field quoted,
/// parameters sampled at different rates. Pivoted into one sample per 2 s window holding the last value of each mapped
/// parameter in that window. One vehicle per file; no GPS.
/// </summary>
internal static partial class CarScannerLog
{
    private const string SourcePrefix = "carscanner:";
    private const double WindowSeconds = 2;

    private enum Output { Obd, Signal }

    // Car Scanner also logs values it computes itself (averages, distances, prices, "instant" consumption); only the
    // parameters an ECU reports are replayed.
    private static readonly (string Parameter, string Unit, string Signal, Output Output)[] Mapped =
    [
        ("Engine RPM", "rpm", SignalCatalog.Vehicle.EngineSpeed, Output.Obd),
        ("Vehicle speed", "km/h", SignalCatalog.Vehicle.Speed, Output.Obd),
        ("Engine coolant temperature", "\u2103", SignalCatalog.Vehicle.CoolantTemperature, Output.Signal),
        ("Engine fuel rate", "l/h", SignalCatalog.Vehicle.FuelRate, Output.Signal),
    ];

    private static readonly Dictionary<string, int> MappedIndex = Mapped
        .Select((mapped, index) => (mapped.Parameter, index))
        .ToDictionary(m => m.Parameter, m => m.index, StringComparer.Ordinal);

    // The log names neither car nor app version; the repository's README does, per vehicle folder.
    private static readonly Dictionary<string, (string Make, string Model, string Year)> KnownVehicles = new(StringComparer.OrdinalIgnoreCase)
    {
        ["volvo_v40"] = ("Volvo", "V40 D2", "2015"),
    };

    public static bool Recognises(string headerLine)
    {
        var header = RecordedText.SplitFields(headerLine, ';');
        return header is ["SECONDS", "PID", "VALUE", "UNITS"];
    }

    public static IReadOnlyList<TimedDevice> Read(string path, string fileName)
    {
        var rows = ReadMappedRows(path, fileName);
        if (rows.Count == 0) throw new InvalidDataException($"{fileName} holds none of the parameters replayed: {string.Join(", ", Mapped.Select(m => m.Parameter))}.");

        // Windows start at the first replayed row, so the first sample is at offset 0.
        var start = double.MaxValue;
        foreach (var row in rows) start = Math.Min(start, row.Seconds);

        var windows = new SortedDictionary<long, double?[]>();
        foreach (var row in rows)
        {
            var window = (long)Math.Floor((row.Seconds - start) / WindowSeconds);
            if (!windows.TryGetValue(window, out var last)) windows[window] = last = new double?[Mapped.Length];
            last[row.Parameter] = row.Value; // later rows overwrite: the last value in the window wins
        }

        // The log has no wall-clock time; the offset is what matters to the replay, so the window index is placed on
        // the Unix epoch and the alignment step turns it back into an offset from the first window.
        var samples = new List<TimedSample>(windows.Count);
        foreach (var (window, values) in windows)
        {
            var signals = new Dictionary<string, double>(StringComparer.Ordinal);
            var obd = new List<string>();
            for (var i = 0; i < Mapped.Length; i++)
            {
                if (values[i] is not { } value) continue;
                if (Mapped[i].Output == Output.Obd) obd.Add(ObdCodec.Encode(Mapped[i].Signal, value));
                else signals[Mapped[i].Signal] = value;
            }
            samples.Add(new TimedSample(DateTimeOffset.UnixEpoch + TimeSpan.FromSeconds(window * WindowSeconds), signals, obd));
        }

        var (sourceId, vehicle) = Names(fileName);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal) { ["firmware"] = "Car Scanner" };
        if (KnownVehicles.TryGetValue(vehicle, out var known))
        {
            metadata["make"] = known.Make;
            metadata["model"] = known.Model;
            metadata["year"] = known.Year;
        }
        return [new TimedDevice(sourceId, DeviceKind.Vehicle, metadata, samples)];
    }

    private readonly record struct MappedRow(double Seconds, int Parameter, double Value);

    private static List<MappedRow> ReadMappedRows(string path, string fileName)
    {
        var rows = new List<MappedRow>();
        long lineNumber = 0;
        foreach (var line in File.ReadLines(path, Encoding.UTF8))
        {
            lineNumber++;
            if (lineNumber == 1 || line.Length == 0) continue;
            var fields = RecordedText.SplitFields(line, ';');
            if (fields.Length != 4) throw new InvalidDataException($"{fileName} line {lineNumber}: {fields.Length} fields, expected SECONDS;PID;VALUE;UNITS.");

            if (!MappedIndex.TryGetValue(fields[1], out var parameter)) continue;
            if (fields[3] != Mapped[parameter].Unit)
                throw new InvalidDataException($"{fileName} line {lineNumber}: {fields[1]} is in '{fields[3]}', expected '{Mapped[parameter].Unit}'.");
            // Values are kept as logged, start-up glitches included: refusing them is the pipeline's job (out_of_range).
            rows.Add(new MappedRow(
                RecordedText.Number(fields[0], fileName, lineNumber, "SECONDS"),
                parameter,
                RecordedText.Number(fields[2], fileName, lineNumber, fields[1])));
        }
        return rows;
    }

    /// <summary>
    /// carscanner_volvo_v40_2019-03-06_22-13-55.csv → source "carscanner:volvo_v40_2019-03-06", vehicle "volvo_v40".
    /// The time of day (local, from the app's file name) is dropped from the source id.
    /// </summary>
    private static (string SourceId, string Vehicle) Names(string fileName)
    {
        var name = Path.GetFileNameWithoutExtension(fileName);
        const string prefix = "carscanner_";
        if (name.StartsWith(prefix, StringComparison.OrdinalIgnoreCase) && name.Length > prefix.Length) name = name[prefix.Length..];
        var match = TripName().Match(name);
        return match.Success
            ? (SourcePrefix + match.Groups["vehicle"].Value + "_" + match.Groups["date"].Value, match.Groups["vehicle"].Value)
            : (SourcePrefix + name, name);
    }

    [GeneratedRegex(@"^(?<vehicle>.+?)_(?<date>\d{4}-\d{2}-\d{2})(?:[_ ]\d{2}-\d{2}-\d{2})?$", RegexOptions.CultureInvariant)]
    private static partial Regex TripName();
}
