using Pipeline.Core.Envelope;

namespace Pipeline.Simulator.Replay;

/// <summary>A column of an observations table, the signal it becomes and the conversion into the pipeline's unit.</summary>
internal readonly record struct MappedColumn(string Column, string Signal, Func<double, double> Convert);

/// <summary>
/// How an observations table with one row per station and hour is laid out (aimsir17, nycflights13): which columns name
/// the station and the UTC time, which become signals, and the file beside it with the stations' places.
/// </summary>
internal sealed record StationTable(string SourcePrefix, string StationColumn, string TimeColumn, MappedColumn[] Signals, string StationsFileName)
{
    private string[] Columns => [StationColumn, TimeColumn, .. Signals.Select(s => s.Column)];

    public bool Recognises(string[] header) => Array.TrueForAll(Columns, header.Contains);

    /// <summary>The stations file beside <paramref name="path"/>; its absence is said plainly rather than as a missing station.</summary>
    public string StationsPath(string path)
    {
        var stationsPath = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, StationsFileName);
        return File.Exists(stationsPath)
            ? stationsPath
            : throw new FileNotFoundException($"{Path.GetFileName(path)} needs the stations' coordinates in {StationsFileName} beside it ({stationsPath}).", stationsPath);
    }

    /// <summary>One device per station, with the metadata <paramref name="stations"/> holds for it, and a sample per row with any signal.</summary>
    public IReadOnlyList<TimedDevice> Read(string path, string fileName, IReadOnlyDictionary<string, IReadOnlyDictionary<string, string>> stations)
    {
        var devices = new Dictionary<string, TimedDevice>(StringComparer.Ordinal);
        var order = new List<TimedDevice>();
        foreach (var row in RecordedText.CsvRows(path, fileName, Columns))
        {
            var signals = new Dictionary<string, double>(StringComparer.Ordinal);
            for (var i = 0; i < Signals.Length; i++)
            {
                var text = row[i + 2];
                // R writes a missing value as NA, or as an empty field with write.csv(na = "").
                if (text is "" or "NA") continue;
                // No filtering: known bad values (the 1048 mph wind at EWR) must reach the pipeline and be refused there.
                signals[Signals[i].Signal] = Signals[i].Convert(RecordedText.Number(text, fileName, row.Line, Signals[i].Column));
            }
            if (signals.Count == 0) continue;

            var station = row[0];
            if (!devices.TryGetValue(station, out var device))
            {
                if (!stations.TryGetValue(station, out var metadata))
                    throw new InvalidDataException($"{fileName} line {row.Line}: station '{station}' is not in {StationsFileName}.");
                devices[station] = device = new TimedDevice(SourcePrefix + station, DeviceKind.Weather, metadata, []);
                order.Add(device);
            }
            device.Samples.Add(new TimedSample(RecordedText.Utc(row[1], fileName, row.Line, TimeColumn), signals, []));
        }
        return order;
    }
}
