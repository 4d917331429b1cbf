using System.Text;
using System.Text.Json;

namespace Pipeline.Simulator.Replay;

/// <summary>
/// Reads a recorded real-world file (see Recorded/SOURCES.md) into devices with samples in the pipeline's signal names
/// and units. The format is recognised from the file's extension and its content (JSON shape, CSV header, SURFRAD
/// header), not from its full name, so a renamed copy still loads. Companion station files are found beside the data
/// file.
/// </summary>
public static class RecordedFiles
{
    /// <summary>The formats <see cref="Load"/> reads, as named in its error messages.</summary>
    public const string SupportedFormats =
        "enviroCar GeoJSON track (.json); Car Scanner long-format log (.csv, \"SECONDS\";\"PID\";\"VALUE\";\"UNITS\"); " +
        "nycflights13 weather (.csv, with nycflights13_stations.csv beside it); aimsir17 observations (.csv, with " +
        "aimsir17_stations.csv beside it); SURFRAD daily file (.dat)";

    /// <summary>The devices recorded in the file at <paramref name="path"/>, samples offset from the file's earliest one.</summary>
    /// <exception cref="FileNotFoundException">The file, or a companion station file it needs, does not exist.</exception>
    /// <exception cref="InvalidDataException">The file is not one of <see cref="SupportedFormats"/>, or is broken.</exception>
    public static IReadOnlyList<RecordedDevice> Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"Recorded file {path} does not exist.", path);

        var fileName = Path.GetFileName(path);
        var devices = Path.GetExtension(path).ToUpperInvariant() switch
        {
            ".JSON" => LoadJson(path, fileName),
            ".CSV" => LoadCsv(path, fileName),
            ".DAT" => LoadDat(path, fileName),
            _ => throw NotSupported(fileName, "its extension is not .json, .csv or .dat"),
        };
        return RecordedTimeline.AlignToEarliest(devices, fileName);
    }

    private static IReadOnlyList<TimedDevice> LoadJson(string path, string fileName)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(File.ReadAllBytes(path));
        }
        catch (JsonException e)
        {
            throw NotSupported(fileName, $"it is not valid JSON ({e.Message})");
        }
        using (document)
        {
            if (!EnviroCarTrack.Recognises(document.RootElement))
                throw NotSupported(fileName, "it is JSON but not a GeoJSON FeatureCollection with enviroCar phenomenons");
            return EnviroCarTrack.Read(document.RootElement, fileName);
        }
    }

    private static IReadOnlyList<TimedDevice> LoadCsv(string path, string fileName)
    {
        string? headerLine;
        using (var reader = new StreamReader(path, Encoding.UTF8))
        {
            headerLine = reader.ReadLine();
        }
        if (headerLine is null) throw NotSupported(fileName, "it is empty");

        if (CarScannerLog.Recognises(headerLine)) return CarScannerLog.Read(path, fileName);
        var header = RecordedText.SplitFields(headerLine, ',');
        if (NycFlightsWeather.Table.Recognises(header)) return NycFlightsWeather.Read(path, fileName);
        if (AimsirObservations.Table.Recognises(header)) return AimsirObservations.Read(path, fileName);
        if (NycFlightsWeather.RecognisesStations(header) || AimsirObservations.RecognisesStations(header))
            throw NotSupported(fileName, "it is a station list, which is read together with the observations file beside it; load that file");
        throw NotSupported(fileName, $"its CSV header '{Shorten(headerLine)}' is none of the known ones");
    }

    private static IReadOnlyList<TimedDevice> LoadDat(string path, string fileName)
    {
        var firstLines = File.ReadLines(path, Encoding.UTF8).Take(2).ToList();
        if (firstLines.Count < 2 || !SurfradDay.Recognises(firstLines[1]))
            throw NotSupported(fileName, "its second line is not a SURFRAD header such as '37.70  105.92 2317 m version 1'");
        return SurfradDay.Read(path, fileName);
    }

    private static InvalidDataException NotSupported(string fileName, string why) =>
        new($"{fileName} is not a recorded file this replay reads: {why}. Supported formats: {SupportedFormats}.");

    private static string Shorten(string text) => text.Length <= 80 ? text : text[..80] + "…";
}
