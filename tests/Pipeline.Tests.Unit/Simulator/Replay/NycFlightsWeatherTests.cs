using Pipeline.Simulator.Replay;
using Pipeline.Core.Envelope;
using Pipeline.Core.Signals;

namespace Pipeline.Tests.Unit.Simulator.Replay;

public sealed class NycFlightsWeatherTests
{
    private const string Weather = "nycflights13_weather_2013.csv";
    private static readonly DateTimeOffset FirstHour = new(2013, 1, 1, 6, 0, 0, TimeSpan.Zero);

    private static TimeSpan Since(int month, int day, int hourUtc) => new DateTimeOffset(2013, month, day, hourUtc, 0, 0, TimeSpan.Zero) - FirstHour;

    [Fact]
    public void Load_Weather_IsThreeAirportStationsWithEveryHourlyRow()
    {
        var stations = RecordedData.Load(Weather);

        Assert.Equal(["nycflights13:EWR", "nycflights13:JFK", "nycflights13:LGA"], stations.Select(s => s.SourceId));
        Assert.All(stations, s => Assert.Equal(DeviceKind.Weather, s.Kind));
        Assert.All(stations, s => Assert.Equal("ASOS", s.Metadata["model"]));
        // No row has every mapped value NA, so every row is a sample.
        Assert.Equal([8703, 8706, 8706], stations.Select(s => s.Samples.Count));
    }

    [Theory]
    [InlineData("nycflights13:EWR", "40.6925", "-74.168667", "5.5")]   // 18 ft
    [InlineData("nycflights13:JFK", "40.639751", "-73.778925", "4")]   // 13 ft
    [InlineData("nycflights13:LGA", "40.777245", "-73.872608", "6.7")] // 22 ft
    public void Load_Weather_StationMetadataCarriesCoordinatesAndElevationInMetres(string sourceId, string latitude, string longitude, string elevation)
    {
        var station = RecordedData.Device(Weather, sourceId);

        Assert.Equal(latitude, station.Metadata["latitude"]);
        Assert.Equal(longitude, station.Metadata["longitude"]);
        Assert.Equal(elevation, station.Metadata["elevation"]);
    }

    [Fact]
    public void Load_FirstEwrRow_ConvertsUsUnits()
    {
        // EWR,2013,1,1,1,39.02,26.06,59.37,270,10.357019999999999,NA,0,1012,10,2013-01-01T06:00:00Z
        var sample = RecordedData.Device(Weather, "nycflights13:EWR").Samples[0];

        Assert.Equal(TimeSpan.Zero, sample.Offset);
        Assert.Equal(3.9, sample.Signals[SignalCatalog.Weather.Temperature], 9);
        Assert.Equal(59.37, sample.Signals[SignalCatalog.Weather.Humidity]);
        Assert.Equal(270, sample.Signals[SignalCatalog.Weather.WindDirection]);
        Assert.Equal(4.6300022208, sample.Signals[SignalCatalog.Weather.WindSpeed], 9);
        Assert.Equal(0, sample.Signals[SignalCatalog.Weather.PrecipitationRate]);
        Assert.Equal(1012, sample.Signals[SignalCatalog.Weather.Pressure]);
        Assert.False(sample.Signals.ContainsKey(SignalCatalog.Weather.WindGust));
        Assert.Empty(sample.Obd);
    }

    [Fact]
    public void Load_KnownBadEwrWind_ComesThroughConvertedNotFiltered()
    {
        // EWR,2013,2,12,3,39.02,26.96,61.63,260,1048.36058,NA,0,1008.3,10,2013-02-12T08:00:00Z
        var sample = RecordedData.At(RecordedData.Device(Weather, "nycflights13:EWR"), Since(2, 12, 8));

        Assert.Equal(468.66, sample.Signals[SignalCatalog.Weather.WindSpeed], 2);
        Assert.Equal(1008.3, sample.Signals[SignalCatalog.Weather.Pressure]);
        Assert.Equal(260, sample.Signals[SignalCatalog.Weather.WindDirection]);
    }

    [Fact]
    public void Load_EwrGustAndHeavyRain_ConvertToMetresPerSecondAndMillimetresPerHour()
    {
        var ewr = RecordedData.Device(Weather, "nycflights13:EWR");

        // EWR,2013,2,12,2,…,20.714039999999997,25.317159999999998,0,1007.8,10,2013-02-12T07:00:00Z
        var gusty = RecordedData.At(ewr, Since(2, 12, 7));
        Assert.Equal(11.3177832064, gusty.Signals[SignalCatalog.Weather.WindGust], 9);
        // EWR,2013,8,28,14,73.4,71.6,94.1,0,0,NA,1.21,NA,4,2013-08-28T18:00:00Z — pressure NA is left out.
        var rainy = RecordedData.At(ewr, Since(8, 28, 18));
        Assert.Equal(30.734, rainy.Signals[SignalCatalog.Weather.PrecipitationRate], 9);
        Assert.Equal(23, rainy.Signals[SignalCatalog.Weather.Temperature], 9);
        Assert.False(rainy.Signals.ContainsKey(SignalCatalog.Weather.Pressure));
    }

    [Fact]
    public void Load_HourRepeatedWhenClocksGoBack_KeepsBothHoursApart()
    {
        // 2013-11-03 01:00 New York time happens twice; time_hour tells them apart (05:00Z and 06:00Z).
        var ewr = RecordedData.Device(Weather, "nycflights13:EWR");

        RecordedData.At(ewr, Since(11, 3, 5));
        RecordedData.At(ewr, Since(11, 3, 6));
        Assert.Equal(ewr.Samples.Count, ewr.Samples.Select(s => s.Offset).Distinct().Count());
    }

    [Fact]
    public void Load_RowWithEveryValueMissing_IsSkipped()
    {
        using var scratch = new ScratchFolder();
        scratch.Write("nycflights13_stations.csv", File.ReadAllText(RecordedData.PathOf("nycflights13_stations.csv")));
        var path = scratch.Write("weather.csv",
            "origin,year,month,day,hour,temp,dewp,humid,wind_dir,wind_speed,wind_gust,precip,pressure,visib,time_hour\n" +
            "JFK,2013,1,1,1,NA,NA,NA,NA,NA,NA,NA,NA,10,2013-01-01T06:00:00Z\n" +
            "JFK,2013,1,1,2,32,NA,NA,NA,NA,NA,NA,NA,10,2013-01-01T07:00:00Z\n");

        var station = Assert.Single(RecordedFiles.Load(path));

        var sample = Assert.Single(station.Samples);
        Assert.Equal(TimeSpan.Zero, sample.Offset);
        Assert.Equal(0, Assert.Single(sample.Signals).Value, 9);
    }

    [Fact]
    public void Load_WeatherWithoutStationsBesideIt_NamesTheMissingFile()
    {
        using var scratch = new ScratchFolder();
        var path = scratch.Write("weather.csv", string.Concat(File.ReadLines(RecordedData.PathOf(Weather)).Take(3).Select(l => l + "\n")));

        var error = Assert.Throws<FileNotFoundException>(() => RecordedFiles.Load(path));

        Assert.Contains("nycflights13_stations.csv", error.Message, StringComparison.Ordinal);
    }
}
