using Pipeline.Core.Envelope;
using Pipeline.Core.Signals;

namespace Pipeline.Tests.Unit.Simulator.Replay;

public sealed class AimsirObservationsTests
{
    private const string Ophelia = "aimsir17_ophelia_2017-10-15_17.csv";

    [Fact]
    public void Load_Ophelia_Is25StationsWith72HourlySamplesEach()
    {
        var stations = RecordedData.Load(Ophelia);

        Assert.Equal(25, stations.Count);
        Assert.All(stations, station =>
        {
            Assert.StartsWith("aimsir17:", station.SourceId, StringComparison.Ordinal);
            Assert.Equal(DeviceKind.Weather, station.Kind);
            Assert.Equal("Met Éireann synoptic", station.Metadata["model"]);
            Assert.Equal(Enumerable.Range(0, 72).Select(h => TimeSpan.FromHours(h)), station.Samples.Select(s => s.Offset));
        });
    }

    [Fact]
    public void Load_RochesPointAtOphelia_ConvertsKnotsToMetresPerSecond()
    {
        // "ROCHES POINT",2017,10,16,12,"2017-10-16T12:00:00Z",1.3,12,96,982.8,59,180 — the file's strongest wind.
        var sample = RecordedData.At(RecordedData.Device(Ophelia, "aimsir17:ROCHES POINT"), TimeSpan.FromHours(36));

        Assert.Equal(30.352196, sample.Signals[SignalCatalog.Weather.WindSpeed], 6);
        Assert.Equal(180, sample.Signals[SignalCatalog.Weather.WindDirection]);
        Assert.Equal(1.3, sample.Signals[SignalCatalog.Weather.PrecipitationRate]);
        Assert.Equal(12, sample.Signals[SignalCatalog.Weather.Temperature]);
        Assert.Equal(96, sample.Signals[SignalCatalog.Weather.Humidity]);
        Assert.Equal(982.8, sample.Signals[SignalCatalog.Weather.Pressure]);
        Assert.Equal(6, sample.Signals.Count);
    }

    [Theory]
    [InlineData("aimsir17:MARKREE")]
    [InlineData("aimsir17:PHOENIX PARK")]
    public void Load_StationWithoutWindInstruments_OmitsWindButKeepsTheRest(string sourceId)
    {
        var station = RecordedData.Device(Ophelia, sourceId);

        Assert.Equal(72, station.Samples.Count);
        Assert.All(station.Samples, s =>
        {
            Assert.False(s.Signals.ContainsKey(SignalCatalog.Weather.WindSpeed));
            Assert.False(s.Signals.ContainsKey(SignalCatalog.Weather.WindDirection));
            Assert.True(s.Signals.ContainsKey(SignalCatalog.Weather.Temperature));
        });
    }

    [Theory]
    [InlineData("aimsir17:SherkinIsland", "51.476", "-9.428", "21")]
    [InlineData("aimsir17:VALENTIA OBSERVATORY", "51.938", "-10.241", "24")]
    [InlineData("aimsir17:KNOCK AIRPORT", "53.906", "-8.817", "201")]
    public void Load_Ophelia_StationMetadataComesFromTheStationList(string sourceId, string latitude, string longitude, string elevation)
    {
        var station = RecordedData.Device(Ophelia, sourceId);

        Assert.Equal(latitude, station.Metadata["latitude"]);
        Assert.Equal(longitude, station.Metadata["longitude"]);
        Assert.Equal(elevation, station.Metadata["elevation"]);
    }
}
