using System.Globalization;
using Pipeline.Core.Envelope;

namespace Pipeline.Core.Signals;

/// <summary>One supported OBD-II mode 01 PID: its data length and the SAE J1979 formula from data bytes A, B, C, D.</summary>
public sealed record ObdPid(byte Pid, string Signal, int Bytes, ObdFormula Decode, Func<double, byte[]> Encode);

/// <summary>A PID's J1979 formula over its data bytes A, B, C, D.</summary>
public delegate double ObdFormula(ReadOnlySpan<byte> data);

/// <summary>
/// Raw OBD-II mode 01 responses ("41" + PID + data bytes, hex, spaces between bytes allowed as an ELM327 prints them)
/// decoded with the SAE J1979 formulas into VSS signals, and encoded back for simulated dongles.
/// </summary>
public static class ObdCodec
{
    private static byte Byte(double value) => (byte)Math.Clamp(Math.Round(value, MidpointRounding.AwayFromZero), 0, 255);

    private static byte[] Word(double value)
    {
        var word = (int)Math.Clamp(Math.Round(value, MidpointRounding.AwayFromZero), 0, 65_535);
        return [(byte)(word >> 8), (byte)word];
    }

    public static IReadOnlyList<ObdPid> Supported { get; } =
    [
        new(0x04, SignalCatalog.Vehicle.EngineLoad, 1, d => d[0] * 100.0 / 255, v => [Byte(v * 255 / 100)]),
        new(0x05, SignalCatalog.Vehicle.CoolantTemperature, 1, d => d[0] - 40.0, v => [Byte(v + 40)]),
        new(0x0B, SignalCatalog.Vehicle.IntakePressure, 1, d => d[0], v => [Byte(v)]),
        new(0x0C, SignalCatalog.Vehicle.EngineSpeed, 2, d => (256 * d[0] + d[1]) / 4.0, v => Word(v * 4)),
        new(0x0D, SignalCatalog.Vehicle.Speed, 1, d => d[0], v => [Byte(v)]),
        new(0x0F, SignalCatalog.Vehicle.IntakeTemperature, 1, d => d[0] - 40.0, v => [Byte(v + 40)]),
        new(0x10, SignalCatalog.Vehicle.AirFlow, 2, d => (256 * d[0] + d[1]) / 100.0, v => Word(v * 100)),
        new(0x11, SignalCatalog.Vehicle.ThrottlePosition, 1, d => d[0] * 100.0 / 255, v => [Byte(v * 255 / 100)]),
        new(0x1F, SignalCatalog.Vehicle.RunTime, 2, d => 256 * d[0] + d[1], v => Word(v)),
        new(0x2F, SignalCatalog.Vehicle.FuelLevel, 1, d => d[0] * 100.0 / 255, v => [Byte(v * 255 / 100)]),
        new(0x31, SignalCatalog.Vehicle.DistanceSinceCodesCleared, 2, d => 256 * d[0] + d[1], v => Word(v)),
        new(0x46, SignalCatalog.Vehicle.AmbientTemperature, 1, d => d[0] - 40.0, v => [Byte(v + 40)]),
        new(0x5B, SignalCatalog.Vehicle.HybridBatteryRemaining, 1, d => d[0] * 100.0 / 255, v => [Byte(v * 255 / 100)]),
        new(0x5C, SignalCatalog.Vehicle.OilTemperature, 1, d => d[0] - 40.0, v => [Byte(v + 40)]),
        new(0x5E, SignalCatalog.Vehicle.FuelRate, 2, d => (256 * d[0] + d[1]) / 20.0, v => Word(v * 20)),
        new(0xA6, SignalCatalog.Vehicle.Odometer, 4, d => ((uint)d[0] << 24 | (uint)d[1] << 16 | (uint)d[2] << 8 | d[3]) / 10.0, v =>
        {
            var tenths = (uint)Math.Clamp(Math.Round(v * 10), 0, uint.MaxValue);
            return [(byte)(tenths >> 24), (byte)(tenths >> 16), (byte)(tenths >> 8), (byte)tenths];
        }),
    ];

    private static readonly Dictionary<byte, ObdPid> ByPid = Supported.ToDictionary(p => p.Pid);
    private static readonly Dictionary<string, ObdPid> BySignal = Supported.ToDictionary(p => p.Signal, StringComparer.Ordinal);

    /// <summary>Decodes one response into its signal and value, or says why it cannot (malformed, unsupported_pid).</summary>
    public static bool TryDecode(string response, out string signal, out double value, out Rejection? rejection)
    {
        signal = "";
        value = 0;
        rejection = null;
        // Spaces between bytes are skipped; only the first bytes (mode, PID, at most four of data) are kept, on the stack.
        Span<byte> bytes = stackalloc byte[6];
        var digits = 0;
        foreach (var c in response)
        {
            if (c == ' ') continue;
            if (!Uri.IsHexDigit(c))
            {
                digits = -1;
                break;
            }
            if (digits / 2 < bytes.Length) bytes[digits / 2] = (byte)(bytes[digits / 2] << 4 | Uri.FromHex(c));
            digits++;
        }
        if (digits < 4 || digits % 2 != 0)
        {
            rejection = new Rejection(ReasonCode.Malformed, $"OBD response '{SafeText.Quote(response, 24)}' is not hex bytes such as \"410C1AF8\".");
            return false;
        }
        var length = digits / 2;
        if (bytes[0] != 0x41)
        {
            rejection = new Rejection(ReasonCode.Malformed, $"OBD response '{SafeText.Quote(response, 24)}' is not a mode 01 response (it must start with 41).");
            return false;
        }
        if (!ByPid.TryGetValue(bytes[1], out var pid))
        {
            rejection = new Rejection(ReasonCode.UnsupportedPid, $"PID {bytes[1]:X2} is not decoded here; supported: {string.Join(", ", Supported.Select(p => p.Pid.ToString("X2", CultureInfo.InvariantCulture)))}.");
            return false;
        }
        if (length - 2 != pid.Bytes)
        {
            rejection = new Rejection(ReasonCode.Malformed, $"OBD response for PID {pid.Pid:X2} carries {length - 2} data bytes; J1979 defines {pid.Bytes}.");
            return false;
        }
        signal = pid.Signal;
        value = pid.Decode(bytes[2..length]);
        return true;
    }

    /// <summary>The mode 01 response a dongle would give for a signal's value (rounded to the PID's resolution).</summary>
    public static string Encode(string signal, double value)
    {
        var pid = BySignal.TryGetValue(signal, out var found) ? found : throw new ArgumentException($"No supported PID carries {signal}.", nameof(signal));
        return "41" + pid.Pid.ToString("X2", CultureInfo.InvariantCulture) + Convert.ToHexString(pid.Encode(value));
    }

    public static bool CanEncode(string signal) => BySignal.ContainsKey(signal);
}
