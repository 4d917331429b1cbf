using Pipeline.Core.Envelope;
using Pipeline.Core.Signals;
using V = Pipeline.Core.Signals.SignalCatalog.Vehicle;

namespace Pipeline.Tests.Unit.Signals;

/// <summary>Mode 01 responses decoded with the SAE J1979 formulas (A, B, C, D = data bytes), one case per supported PID.</summary>
public sealed class ObdCodecTests
{
    [Theory]
    [InlineData("4104FF", V.EngineLoad, 100.0)]                       // A·100/255
    [InlineData("410480", V.EngineLoad, 50.196)]
    [InlineData("41057B", V.CoolantTemperature, 83.0)]               // A − 40
    [InlineData("410500", V.CoolantTemperature, -40.0)]
    [InlineData("410B65", V.IntakePressure, 101.0)]                  // A kPa
    [InlineData("410C1AF8", V.EngineSpeed, 1726.0)]                  // (256A + B)/4
    [InlineData("410CFFFF", V.EngineSpeed, 16383.75)]
    [InlineData("410D32", V.Speed, 50.0)]                            // A km/h
    [InlineData("410F3C", V.IntakeTemperature, 20.0)]                // A − 40
    [InlineData("41100190", V.AirFlow, 4.0)]                         // (256A + B)/100
    [InlineData("411133", V.ThrottlePosition, 20.0)]                 // A·100/255
    [InlineData("411F0E10", V.RunTime, 3600.0)]                      // 256A + B
    [InlineData("412F80", V.FuelLevel, 50.196)]                      // A·100/255
    [InlineData("41310190", V.DistanceSinceCodesCleared, 400.0)]     // 256A + B km
    [InlineData("41463C", V.AmbientTemperature, 20.0)]               // A − 40
    [InlineData("415BCC", V.HybridBatteryRemaining, 80.0)]           // A·100/255
    [InlineData("415C82", V.OilTemperature, 90.0)]                   // A − 40
    [InlineData("415E00A0", V.FuelRate, 8.0)]                        // (256A + B)/20
    [InlineData("41A6001E8480", V.Odometer, 200000.0)]               // (A·2²⁴ + B·2¹⁶ + C·2⁸ + D)/10 km
    [InlineData("41 0C 1A F8", V.EngineSpeed, 1726.0)]               // as an ELM327 prints it
    [InlineData("410c1af8", V.EngineSpeed, 1726.0)]
    public void TryDecode_SupportedPid_AppliesTheJ1979Formula(string response, string signal, double expected)
    {
        Assert.True(ObdCodec.TryDecode(response, out var decoded, out var value, out var rejection), rejection?.Detail);
        Assert.Equal(signal, decoded);
        Assert.Equal(expected, value, 3);
    }

    [Theory]
    [InlineData("41FF00", ReasonCode.UnsupportedPid)]      // no such PID here
    [InlineData("41420FA0", ReasonCode.UnsupportedPid)]    // control module voltage: valid J1979, not decoded
    [InlineData("410C1A", ReasonCode.Malformed)]           // rpm needs two data bytes
    [InlineData("410D3200", ReasonCode.Malformed)]         // speed has one
    [InlineData("420C1AF8", ReasonCode.Malformed)]         // mode 02 (freeze frame), not a current-data response
    [InlineData("410Z", ReasonCode.Malformed)]
    [InlineData("41A6001E848000", ReasonCode.Malformed)]   // odometer has four data bytes, not five (past the six decoded)
    [InlineData("410C1AF8" + "00000000000000000000", ReasonCode.Malformed)] // long: counted, not decoded
    [InlineData("41 0C 1A F", ReasonCode.Malformed)]       // an odd number of hex digits
    [InlineData("41 0C 1A\tF8", ReasonCode.Malformed)]     // only spaces separate bytes
    [InlineData("41", ReasonCode.Malformed)]
    [InlineData("", ReasonCode.Malformed)]
    public void TryDecode_BadResponse_SaysWhy(string response, ReasonCode reason)
    {
        Assert.False(ObdCodec.TryDecode(response, out _, out _, out var rejection));
        Assert.Equal(reason, rejection!.Code);
    }

    [Fact]
    public void Encode_ThenDecode_ReturnsTheValueWithinThePidResolution()
    {
        var resolution = new Dictionary<string, double>
        {
            [V.EngineLoad] = 100.0 / 255, [V.CoolantTemperature] = 1, [V.IntakePressure] = 1, [V.EngineSpeed] = 0.25, [V.Speed] = 1,
            [V.IntakeTemperature] = 1, [V.AirFlow] = 0.01, [V.ThrottlePosition] = 100.0 / 255, [V.RunTime] = 1, [V.FuelLevel] = 100.0 / 255,
            [V.DistanceSinceCodesCleared] = 1, [V.AmbientTemperature] = 1, [V.HybridBatteryRemaining] = 100.0 / 255, [V.OilTemperature] = 1,
            [V.FuelRate] = 0.05, [V.Odometer] = 0.1,
        };
        var random = new Random(3);
        foreach (var pid in ObdCodec.Supported)
        {
            // The values both the catalog allows and the PID's bytes can carry.
            var definition = SignalCatalog.All.Single(s => s.Name == pid.Signal);
            var low = Math.Max(definition.Min, pid.Decode(new byte[pid.Bytes]));
            var high = Math.Min(Math.Min(definition.Max, 6_000), pid.Decode(Enumerable.Repeat((byte)0xFF, pid.Bytes).ToArray()));
            for (var i = 0; i < 200; i++)
            {
                var value = low + random.NextDouble() * (high - low);
                Assert.True(ObdCodec.TryDecode(ObdCodec.Encode(pid.Signal, value), out var signal, out var decoded, out _));
                Assert.Equal(pid.Signal, signal);
                Assert.True(Math.Abs(decoded - value) <= resolution[pid.Signal] / 2 + 1e-9, $"{pid.Signal}: {value} came back as {decoded}");
            }
        }
        Assert.Equal(16, ObdCodec.Supported.Count);
    }
}
