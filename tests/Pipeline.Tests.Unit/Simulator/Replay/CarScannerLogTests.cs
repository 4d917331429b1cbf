using Pipeline.Simulator.Replay;
using Pipeline.Core.Envelope;
using Pipeline.Core.Signals;

namespace Pipeline.Tests.Unit.Simulator.Replay;

public sealed class CarScannerLogTests
{
    private const string Volvo = "carscanner_volvo_v40_2019-03-06_22-13-55.csv";
    private const string Header = "\"SECONDS\";\"PID\";\"VALUE\";\"UNITS\"\n";

    private static Dictionary<string, double> Decoded(RecordedSample sample)
    {
        var decoded = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var response in sample.Obd)
        {
            Assert.True(ObdCodec.TryDecode(response, out var signal, out var value, out _));
            decoded.Add(signal, value);
        }
        return decoded;
    }

    [Fact]
    public void Load_VolvoLog_IsOneVolvoV40WithASampleForEveryTwoSecondWindowThatHasEcuValues()
    {
        var vehicle = Assert.Single(RecordedData.Load(Volvo));

        Assert.Equal("carscanner:volvo_v40_2019-03-06", vehicle.SourceId);
        Assert.Equal(DeviceKind.Vehicle, vehicle.Kind);
        Assert.Equal("Volvo", vehicle.Metadata["make"]);
        Assert.Equal("V40 D2", vehicle.Metadata["model"]);
        Assert.Equal("2015", vehicle.Metadata["year"]);
        Assert.Equal("Car Scanner", vehicle.Metadata["firmware"]);
        // SECONDS 65.22 … 2541.21: 1,238 windows. 21 in a row (offsets 1764–1804 s) hold only the two voltage
        // parameters, which are not replayed, and two near the end (2442 s, 2446 s) fall into pauses of the log.
        Assert.Equal(1238 - 21 - 2, vehicle.Samples.Count);
        Assert.Equal(TimeSpan.FromSeconds(1237 * 2), vehicle.Samples[^1].Offset);
        Assert.DoesNotContain(vehicle.Samples, s => s.Offset > TimeSpan.FromSeconds(1762) && s.Offset < TimeSpan.FromSeconds(1806));
        Assert.All(vehicle.Samples, s => Assert.Equal(0, s.Offset.Ticks % TimeSpan.FromSeconds(2).Ticks));
    }

    [Fact]
    public void Load_VolvoLog_FirstWindowHoldsTheLastValuesLoggedInItsTwoSeconds()
    {
        var first = Assert.Single(RecordedData.Load(Volvo)).Samples[0];

        // Rows at 65.22, 65.75, 66.38 and 66.78 s log rpm 1556, 1558, 1556, 1559: the last one stands for the window.
        Assert.Equal(TimeSpan.Zero, first.Offset);
        var decoded = Decoded(first);
        Assert.Equal(1559, decoded[SignalCatalog.Vehicle.EngineSpeed]);
        Assert.Equal(82, decoded[SignalCatalog.Vehicle.Speed]);
        Assert.Equal(2, decoded.Count);
        Assert.Equal(84, first.Signals[SignalCatalog.Vehicle.CoolantTemperature]);
        Assert.Single(first.Signals);
    }

    [Fact]
    public void Load_VolvoLog_FuelRateIsASignalInLitresPerHourAsLogged()
    {
        var peak = RecordedData.At(Assert.Single(RecordedData.Load(Volvo)), TimeSpan.FromSeconds(989 * 2));

        Assert.Equal(9.70000014454126, peak.Signals[SignalCatalog.Vehicle.FuelRate]);
        var decoded = Decoded(peak);
        Assert.Equal(1703, decoded[SignalCatalog.Vehicle.EngineSpeed]);
        Assert.Equal(66, decoded[SignalCatalog.Vehicle.Speed]);
    }

    [Fact]
    public void Load_LogWithStartUpGlitches_KeepsThemForThePipelineToRefuse()
    {
        using var scratch = new ScratchFolder();
        var path = scratch.Write("carscanner_testcar_2019-02-22_08-03-05.csv", Header +
            "\"10.0\";\"Engine coolant temperature\";\"199\";\"\u2103\"\n" +
            "\"10.5\";\"Engine RPM\";\"800\";\"rpm\"\n" +
            "\"11.9\";\"Engine RPM\";\"15308\";\"rpm\"\n" +
            "\"12.1\";\"Distance to empty\";\"956432\";\"km\"\n" +
            "\"14.2\";\"Vehicle speed\";\"12\";\"km/h\"\n");

        var vehicle = Assert.Single(RecordedFiles.Load(path));

        Assert.Equal("carscanner:testcar_2019-02-22", vehicle.SourceId);
        Assert.Equal([TimeSpan.Zero, TimeSpan.FromSeconds(4)], vehicle.Samples.Select(s => s.Offset));
        Assert.Equal(199, vehicle.Samples[0].Signals[SignalCatalog.Vehicle.CoolantTemperature]);
        Assert.Equal(15308, Decoded(vehicle.Samples[0])[SignalCatalog.Vehicle.EngineSpeed]);
        Assert.Equal(12, Decoded(vehicle.Samples[1])[SignalCatalog.Vehicle.Speed]);
        Assert.Empty(vehicle.Samples[1].Signals);
    }

    [Fact]
    public void Load_LogWithSpeedInMph_IsRefusedRatherThanMisread()
    {
        using var scratch = new ScratchFolder();
        var path = scratch.Write("carscanner_testcar_2019-02-22_08-03-05.csv", Header + "\"1.0\";\"Vehicle speed\";\"30\";\"mph\"\n");

        var error = Assert.Throws<InvalidDataException>(() => RecordedFiles.Load(path));

        Assert.Contains("mph", error.Message, StringComparison.Ordinal);
    }
}
