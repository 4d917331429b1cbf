using System.Globalization;
using System.Text.Json;
using Pipeline.Core.Envelope;
using Pipeline.Core.Signals;

namespace Pipeline.Simulator.Replay;

/// <summary>
/// An enviroCar track: the server's GeoJSON FeatureCollection, one Point feature per GPS fix with the OBD values the
/// app interpolated to it under properties.phenomenons ({name: {value, unit}}). One vehicle per file.
/// </summary>
internal static class EnviroCarTrack
{
    private const string SourcePrefix = "envirocar:";

    // Values a dongle reads from the engine: replayed as the raw mode 01 responses it would have received.
    private static readonly (string Phenomenon, string Unit, string Signal)[] ObdPhenomena =
    [
        ("Speed", "km/h", SignalCatalog.Vehicle.Speed),
        ("Rpm", "u/min", SignalCatalog.Vehicle.EngineSpeed),
        ("Engine Load", "%", SignalCatalog.Vehicle.EngineLoad),
        ("Throttle Position", "%", SignalCatalog.Vehicle.ThrottlePosition),
        ("Intake Pressure", "kPa", SignalCatalog.Vehicle.IntakePressure),
        ("Intake Temperature", "c", SignalCatalog.Vehicle.IntakeTemperature),
    ];

    // The app computes MAF from MAP, IAT and rpm; no dongle answered PID 10 with it, so it goes out as a decoded signal.
    private static readonly (string Phenomenon, string Unit, string Signal)[] DecodedPhenomena =
    [
        ("Calculated MAF", "g/s", SignalCatalog.Vehicle.AirFlow),
        ("GPS Altitude", "m", SignalCatalog.Vehicle.Altitude),
    ];

    public static bool Recognises(JsonElement root) =>
        root.ValueKind == JsonValueKind.Object
        && root.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String && type.ValueEquals("FeatureCollection")
        && root.TryGetProperty("features", out var features) && features.ValueKind == JsonValueKind.Array
        && features.GetArrayLength() > 0
        && features[0].ValueKind == JsonValueKind.Object
        && features[0].TryGetProperty("properties", out var properties) && properties.ValueKind == JsonValueKind.Object
        && properties.TryGetProperty("phenomenons", out _);

    public static IReadOnlyList<TimedDevice> Read(JsonElement root, string fileName)
    {
        var samples = new List<TimedSample>();
        var index = 0;
        foreach (var feature in root.GetProperty("features").EnumerateArray())
        {
            samples.Add(ReadPoint(feature, fileName, index));
            index++;
        }
        return [new TimedDevice(SourceId(fileName), DeviceKind.Vehicle, Metadata(root), samples)];
    }

    /// <summary>"envirocar:track_1" for envirocar_track_1.json: the file name without the redundant format prefix.</summary>
    private static string SourceId(string fileName)
    {
        var name = Path.GetFileNameWithoutExtension(fileName);
        const string prefix = "envirocar_";
        if (name.StartsWith(prefix, StringComparison.OrdinalIgnoreCase) && name.Length > prefix.Length) name = name[prefix.Length..];
        return SourcePrefix + name;
    }

    // The track names its car under properties.sensor.properties (the server's sensor = the registered car).
    private static Dictionary<string, string> Metadata(JsonElement root)
    {
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal) { ["firmware"] = "enviroCar" };
        if (root.TryGetProperty("properties", out var properties) && properties.ValueKind == JsonValueKind.Object
            && properties.TryGetProperty("sensor", out var sensor) && sensor.ValueKind == JsonValueKind.Object
            && sensor.TryGetProperty("properties", out var car) && car.ValueKind == JsonValueKind.Object)
        {
            if (car.TryGetProperty("manufacturer", out var make) && make.ValueKind == JsonValueKind.String) metadata["make"] = make.GetString()!;
            if (car.TryGetProperty("model", out var model) && model.ValueKind == JsonValueKind.String) metadata["model"] = model.GetString()!;
            if (car.TryGetProperty("constructionYear", out var year) && year.TryGetInt32(out var built))
                metadata["year"] = built.ToString(CultureInfo.InvariantCulture);
        }
        return metadata;
    }

    private static TimedSample ReadPoint(JsonElement feature, string fileName, int index)
    {
        var where = $"{fileName} feature {index}";
        if (!feature.TryGetProperty("properties", out var properties) || !properties.TryGetProperty("time", out var time) || time.ValueKind != JsonValueKind.String)
            throw new InvalidDataException($"{where}: no properties.time.");
        var at = RecordedText.Utc(time.GetString()!, fileName, index, "properties.time");

        var signals = new Dictionary<string, double>(StringComparer.Ordinal);
        var obd = new List<string>();

        // GeoJSON positions are [longitude, latitude], the reverse of the usual spoken order.
        if (!feature.TryGetProperty("geometry", out var geometry) || !geometry.TryGetProperty("coordinates", out var coordinates)
            || coordinates.ValueKind != JsonValueKind.Array || coordinates.GetArrayLength() < 2)
            throw new InvalidDataException($"{where}: no Point geometry with [longitude, latitude].");
        signals[SignalCatalog.Vehicle.Longitude] = coordinates[0].GetDouble();
        signals[SignalCatalog.Vehicle.Latitude] = coordinates[1].GetDouble();

        if (!properties.TryGetProperty("phenomenons", out var phenomena) || phenomena.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{where}: no properties.phenomenons.");

        foreach (var (phenomenon, unit, signal) in DecodedPhenomena)
        {
            if (TryPhenomenon(phenomena, phenomenon, unit, where, out var value)) signals[signal] = value;
        }
        if (TryPhenomenon(phenomena, "GPS Bearing", "deg", where, out var bearing))
        {
            // Same direction, written in the catalog's 0..360 range (a bearing of -10 is a heading of 350).
            signals[SignalCatalog.Vehicle.Heading] = (bearing % 360 + 360) % 360;
        }
        // The last fix of a track has GPS phenomena only: the sample then carries no OBD responses.
        foreach (var (phenomenon, unit, signal) in ObdPhenomena)
        {
            if (TryPhenomenon(phenomena, phenomenon, unit, where, out var value)) obd.Add(ObdCodec.Encode(signal, value));
        }
        return new TimedSample(at, signals, obd);
    }

    private static bool TryPhenomenon(JsonElement phenomena, string name, string expectedUnit, string where, out double value)
    {
        value = 0;
        if (!phenomena.TryGetProperty(name, out var phenomenon)) return false;
        if (!phenomenon.TryGetProperty("value", out var number) || number.ValueKind != JsonValueKind.Number)
            throw new InvalidDataException($"{where}: phenomenon '{name}' has no numeric value.");
        // Converting is only right for the unit enviroCar documents; another one would be silently wrong by a factor.
        var unit = phenomenon.TryGetProperty("unit", out var written) && written.ValueKind == JsonValueKind.String ? written.GetString() : null;
        if (!string.Equals(unit, expectedUnit, StringComparison.Ordinal))
            throw new InvalidDataException($"{where}: phenomenon '{name}' is in '{unit}', expected '{expectedUnit}'.");
        value = number.GetDouble();
        return true;
    }
}
