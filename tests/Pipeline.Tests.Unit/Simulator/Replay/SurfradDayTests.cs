using Pipeline.Simulator.Replay;
using Pipeline.Core.Envelope;
using Pipeline.Core.Signals;

namespace Pipeline.Tests.Unit.Simulator.Replay;

public sealed class SurfradDayTests
{
    private const string Alamosa = "noaa_surfrad_alamosa_slv_2016-01-01.dat";

    [Fact]
    public void Load_AlamosaDay_IsOneStationWithASampleEveryMinute()
    {
        var station = Assert.Single(RecordedData.Load(Alamosa));

        Assert.Equal("surfrad:slv", station.SourceId);
        Assert.Equal(DeviceKind.Weather, station.Kind);
        Assert.Equal(Enumerable.Range(0, 1440).Select(m => TimeSpan.FromMinutes(m)), station.Samples.Select(s => s.Offset));
    }

    [Fact]
    public void Load_AlamosaDay_MetadataHasWestLongitudeNegative()
    {
        var station = Assert.Single(RecordedData.Load(Alamosa));

        Assert.Equal("37.7", station.Metadata["latitude"]);
        Assert.Equal("-105.92", station.Metadata["longitude"]);
        Assert.Equal("2317", station.Metadata["elevation"]);
        Assert.Equal("SURFRAD", station.Metadata["model"]);
    }

    [Fact]
    public void Load_AlamosaMidday_ReadsTheMeasurementsNotTheirQcFlags()
    {
        // 2016 1 1 1 19 10 19.167 60.66 580.3 0 … -6.2 0 39.9 0 0.0 0 290.4 0 778.0 0 (the day's peak irradiance)
        var sample = RecordedData.At(Assert.Single(RecordedData.Load(Alamosa)), new TimeSpan(19, 10, 0));

        Assert.Equal(580.3, sample.Signals[SignalCatalog.Weather.SolarIrradiance]);
        Assert.Equal(-6.2, sample.Signals[SignalCatalog.Weather.Temperature]);
        Assert.Equal(39.9, sample.Signals[SignalCatalog.Weather.Humidity]);
        Assert.Equal(0.0, sample.Signals[SignalCatalog.Weather.WindSpeed]);
        Assert.Equal(290.4, sample.Signals[SignalCatalog.Weather.WindDirection]);
        Assert.Equal(778.0, sample.Signals[SignalCatalog.Weather.Pressure]);
        Assert.Equal(6, sample.Signals.Count);
    }

    [Fact]
    public void Load_AlamosaMidnight_KeepsTheSmallNegativeNightIrradiance()
    {
        // 2016 1 1 1 0 0 0.000 91.65 -1.8 0 … -7.6 0 52.7 0 3.1 0 304.7 0 773.5 0
        var first = Assert.Single(RecordedData.Load(Alamosa)).Samples[0];

        Assert.Equal(-1.8, first.Signals[SignalCatalog.Weather.SolarIrradiance]);
        Assert.Equal(-7.6, first.Signals[SignalCatalog.Weather.Temperature]);
        Assert.Equal(773.5, first.Signals[SignalCatalog.Weather.Pressure]);
    }

    [Fact]
    public void Load_RowWithMissingMeasurements_OmitsOnlyThose()
    {
        var lines = File.ReadAllLines(RecordedData.PathOf(Alamosa));
        var fields = lines[2].Split(' ', StringSplitOptions.RemoveEmptyEntries);
        fields[8] = "-9999.9";  // dw_solar
        fields[46] = "-9999.9"; // pressure
        using var scratch = new ScratchFolder();
        var path = scratch.Write("slv16001.dat", lines[0] + "\n" + lines[1] + "\n" + string.Join(' ', fields) + "\n");

        var station = Assert.Single(RecordedFiles.Load(path));

        Assert.Equal("surfrad:slv", station.SourceId);
        var sample = Assert.Single(station.Samples);
        Assert.False(sample.Signals.ContainsKey(SignalCatalog.Weather.SolarIrradiance));
        Assert.False(sample.Signals.ContainsKey(SignalCatalog.Weather.Pressure));
        Assert.Equal(-7.6, sample.Signals[SignalCatalog.Weather.Temperature]);
        Assert.Equal(4, sample.Signals.Count);
    }
}
