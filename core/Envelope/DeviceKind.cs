namespace Pipeline.Core.Envelope;

/// <summary>What a device is: wire names "vehicle" and "weather".</summary>
public enum DeviceKind
{
    Vehicle,
    Weather,
}

public static class DeviceKinds
{
    public static string ToWire(this DeviceKind kind) => kind == DeviceKind.Vehicle ? "vehicle" : "weather";

    public static bool TryParse(ReadOnlySpan<byte> utf8, out DeviceKind kind)
    {
        kind = utf8.SequenceEqual("vehicle"u8) ? DeviceKind.Vehicle : DeviceKind.Weather;
        return utf8.SequenceEqual("vehicle"u8) || utf8.SequenceEqual("weather"u8);
    }

    public static bool TryParse(string text, out DeviceKind kind) => TryParse(System.Text.Encoding.UTF8.GetBytes(text), out kind);
}
