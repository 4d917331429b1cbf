using System.Text.Json;
using Pipeline.Simulator.Replay;
using Pipeline.Core.Envelope;
using Pipeline.Core.Signals;

namespace Pipeline.Tests.Unit.Simulator.Replay;

public sealed class EnviroCarTrackTests
{
    private const string Track1 = "envirocar_track_1.json";
    private const string Track2 = "envirocar_track_2.json";

    // Half of each PID's step (SAE J1979): the most a correctly rounded response can differ from the recorded value.
    private static readonly (string Phenomenon, string Signal, double Tolerance)[] ObdPhenomena =
    [
        ("Speed", SignalCatalog.Vehicle.Speed, 0.5),
        ("Rpm", SignalCatalog.Vehicle.EngineSpeed, 0.125),
        ("Engine Load", SignalCatalog.Vehicle.EngineLoad, 100.0 / 255 / 2),
        ("Throttle Position", SignalCatalog.Vehicle.ThrottlePosition, 100.0 / 255 / 2),
        ("Intake Pressure", SignalCatalog.Vehicle.IntakePressure, 0.5),
        ("Intake Temperature", SignalCatalog.Vehicle.IntakeTemperature, 0.5),
    ];

    [Theory]
    [InlineData(Track1, "envirocar:track_1", 368, 30 * 60 + 50)]
    [InlineData(Track2, "envirocar:track_2", 269, 22 * 60 + 38)]
    public void Load_Track_IsOneDodgeCaliberWithEveryPoint(string fileName, string sourceId, int points, int lastSecond)
    {
        var vehicle = Assert.Single(RecordedData.Load(fileName));

        Assert.Equal(sourceId, vehicle.SourceId);
        Assert.Equal(DeviceKind.Vehicle, vehicle.Kind);
        Assert.Equal(points, vehicle.Samples.Count);
        Assert.Equal(TimeSpan.FromSeconds(lastSecond), vehicle.Samples[^1].Offset);
        Assert.Equal("Dodge", vehicle.Metadata["make"]);
        Assert.Equal("Caliber", vehicle.Metadata["model"]);
        Assert.Equal("2007", vehicle.Metadata["year"]);
        Assert.Equal("enviroCar", vehicle.Metadata["firmware"]);
    }

    [Fact]
    public void Load_FirstPointOfTrack1_HasGpsSignalsAndRawObdResponses()
    {
        var first = Assert.Single(RecordedData.Load(Track1)).Samples[0];

        Assert.Equal(TimeSpan.Zero, first.Offset);
        // GeoJSON writes [9.2169…, 53.0984…] = [lon, lat]; Bremen is at 53° N, 8–9° E.
        Assert.Equal(53.09843177484889, first.Signals[SignalCatalog.Vehicle.Latitude]);
        Assert.Equal(9.216968944098916, first.Signals[SignalCatalog.Vehicle.Longitude]);
        Assert.Equal(56.999998301267624, first.Signals[SignalCatalog.Vehicle.Altitude]);
        Assert.Equal(257.19796876744476, first.Signals[SignalCatalog.Vehicle.Heading]);
        Assert.Equal(18.18219060214364, first.Signals[SignalCatalog.Vehicle.AirFlow]);
        // 58.49 km/h → 58 = 0x3A; 1549.58 rpm × 4 → 6198 = 0x1836; 68.63 % × 2.55 → 175 = 0xAF; 21 % × 2.55 → 54 = 0x36;
        // 77 kPa = 0x4D; 18 °C + 40 = 58 = 0x3A.
        Assert.Equal(["410D3A", "410C1836", "4104AF", "411136", "410B4D", "410F3A"], first.Obd);
        Assert.Equal(5, first.Signals.Count);
    }

    [Theory]
    [InlineData(Track1)]
    [InlineData(Track2)]
    public void Load_Track_LastPointCarriesGpsOnly(string fileName)
    {
        var last = Assert.Single(RecordedData.Load(fileName)).Samples[^1];

        Assert.Empty(last.Obd);
        Assert.Equal(
            [SignalCatalog.Vehicle.Altitude, SignalCatalog.Vehicle.Heading, SignalCatalog.Vehicle.Latitude, SignalCatalog.Vehicle.Longitude],
            last.Signals.Keys.Order(StringComparer.Ordinal));
    }

    // Reads the phenomena straight from the GeoJSON and compares every point's responses, decoded, with them.
    [Theory]
    [InlineData(Track1)]
    [InlineData(Track2)]
    public void Load_Track_EveryObdResponseDecodesToTheRecordedValueWithinThePidResolution(string fileName)
    {
        var samples = Assert.Single(RecordedData.Load(fileName)).Samples;
        using var document = JsonDocument.Parse(File.ReadAllBytes(RecordedData.PathOf(fileName)));
        var features = document.RootElement.GetProperty("features");
        Assert.Equal(features.GetArrayLength(), samples.Count);

        for (var i = 0; i < samples.Count; i++)
        {
            var decoded = new Dictionary<string, double>(StringComparer.Ordinal);
            foreach (var response in samples[i].Obd)
            {
                Assert.True(ObdCodec.TryDecode(response, out var signal, out var value, out _));
                decoded.Add(signal, value);
            }
            var phenomena = features[i].GetProperty("properties").GetProperty("phenomenons");
            foreach (var (phenomenon, signal, tolerance) in ObdPhenomena)
            {
                if (!phenomena.TryGetProperty(phenomenon, out var recorded))
                {
                    Assert.False(decoded.ContainsKey(signal), $"point {i} has no {phenomenon} but a response for it");
                    continue;
                }
                var expected = recorded.GetProperty("value").GetDouble();
                Assert.True(Math.Abs(decoded[signal] - expected) <= tolerance + 1e-9, $"point {i} {phenomenon}: recorded {expected}, decoded {decoded[signal]}");
            }
        }
    }

    [Fact]
    public void Load_TrackInMilesPerHour_IsRefusedRatherThanMisread()
    {
        using var scratch = new ScratchFolder();
        var json = File.ReadAllText(RecordedData.PathOf(Track1)).Replace("\"Speed\":{\"value\":58.48611110448837,\"unit\":\"km/h\"}", "\"Speed\":{\"value\":36.3,\"unit\":\"mph\"}", StringComparison.Ordinal);
        var path = scratch.Write("envirocar_track_mph.json", json);

        var error = Assert.Throws<InvalidDataException>(() => RecordedFiles.Load(path));

        Assert.Contains("mph", error.Message, StringComparison.Ordinal);
    }
}
