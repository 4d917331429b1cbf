using Apache.Arrow;
using Pipeline.Core.Envelope;
using Pipeline.Core.Events;
using Pipeline.Projections.Lake;
using Pipeline.Registry;
using V = Pipeline.Core.Signals.SignalCatalog.Vehicle;
using W = Pipeline.Core.Signals.SignalCatalog.Weather;

namespace Pipeline.Tests.Unit.Projections;

/// <summary>Events into rows: partitioned by day, coarsened, typed, and the same rows from the same events.</summary>
public sealed class LakeBuilderTests
{
    private const string Car = "0x00000000000000000000000000000000000000c1";
    private const string Station = "0x00000000000000000000000000000000000000f1";
    private static readonly DateTimeOffset LateOnThe23rd = new(2026, 11, 23, 23, 59, 59, TimeSpan.Zero);

    private static readonly Dictionary<string, Device> Devices = new()
    {
        [Car] = new Device { Id = Car, Kind = DeviceKind.Vehicle },
        [Station] = new Device { Id = Station, Kind = DeviceKind.Weather, Metadata = new() { ["latitude"] = "53.35", ["longitude"] = "-6.26", ["elevation"] = "71" } },
    };

    private static FeedEvent Accepted(long sequence, string device, long seq, DateTimeOffset at, Dictionary<string, double> signals) =>
        new(sequence, device, new ReadingAccepted($"0x{sequence:x64}", seq, at, at.AddSeconds(1), signals, 0, sequence));

    [Fact]
    public void VehicleReadings_GroupByTheUtcDayOfTheirDeviceTime_WithPositionsCoarsenedAndMissingSignalsNull()
    {
        var events = new[]
        {
            Accepted(10, Car, 1, LateOnThe23rd, new() { [V.Speed] = 54.2, [V.Latitude] = 53.34567, [V.Longitude] = -6.26789 }),
            Accepted(12, Car, 2, LateOnThe23rd.AddSeconds(2), new() { [V.Speed] = 61.8 }),
        };

        var groups = new LakeBuilder(locationDecimals: 2).Build(events, Devices);

        Assert.Equal([(LakeDatasets.VehicleSignals, new DateOnly(2026, 11, 23)), (LakeDatasets.VehicleSignals, new DateOnly(2026, 11, 24))],
            groups.Select(g => (g.Dataset.Name, g.Rows.Date)));
        var (first, second) = (groups[0].Rows, groups[1].Rows);
        Assert.Equal((1, 10L, 10L), (first.Count, first.FirstSequence, first.LastSequence));
        Assert.Equal((1, 12L, 12L), (second.Count, second.FirstSequence, second.LastSequence));
        var day1 = first.ToRecordBatch();
        Assert.Equal(53.35, Double(day1, "latitude", 0));
        Assert.Equal(-6.27, Double(day1, "longitude", 0));
        Assert.Equal(54.2, Double(day1, "speed_kmh", 0));
        Assert.Equal(Car, ((StringArray)day1.Column("device")).GetString(0));
        Assert.Equal(10L, ((Int64Array)day1.Column("event_seq")).GetValue(0));
        Assert.Equal(LateOnThe23rd, ((TimestampArray)day1.Column("device_time")).GetTimestamp(0));
        var day2 = second.ToRecordBatch();
        Assert.Null(Double(day2, "latitude", 0));
        Assert.Equal(61.8, Double(day2, "speed_kmh", 0));
    }

    [Fact]
    public void WeatherReadings_CarryTheStationsRegisteredPosition()
    {
        var group = Assert.Single(new LakeBuilder(2).Build([Accepted(7, Station, 1, LateOnThe23rd, new() { [W.Temperature] = 12.5 })], Devices));

        Assert.Equal(LakeDatasets.WeatherObservations, group.Dataset.Name);
        var batch = group.Rows.ToRecordBatch();
        Assert.Equal((53.35, -6.26, 71.0), (Double(batch, "station_latitude", 0), Double(batch, "station_longitude", 0), Double(batch, "station_elevation_m", 0)));
        Assert.Equal(12.5, Double(batch, "temperature_c", 0));
        Assert.Null(Double(batch, "humidity_pct", 0));
    }

    [Fact]
    public void Rejections_GoByTheDayReceived_WithTheDevicesKindAndTheReason()
    {
        var received = LateOnThe23rd.AddSeconds(2);
        var rejected = new FeedEvent(20, Car, new ReadingRejected("0xbad", 3, "out_of_range", "Vehicle.Speed 900 km/h", received, 0, 20));

        var group = Assert.Single(new LakeBuilder(2).Build([rejected], Devices));

        Assert.Equal((LakeDatasets.ReadingRejections, new DateOnly(2026, 11, 24)), (group.Dataset.Name, group.Rows.Date));
        var batch = group.Rows.ToRecordBatch();
        Assert.Equal(("vehicle", "out_of_range", 3L), (((StringArray)batch.Column("kind")).GetString(0), ((StringArray)batch.Column("reason")).GetString(0), ((Int64Array)batch.Column("seq")).GetValue(0)));
    }

    [Fact]
    public void TheSameEvents_MakeTheSameRows_SplitOrWhole()
    {
        var events = Enumerable.Range(1, 6).Select(i => Accepted(i, Car, i, LateOnThe23rd.AddSeconds(i), new() { [V.Speed] = i })).ToList();

        var whole = new LakeBuilder(2).Build(events, Devices);
        var split = new LakeBuilder(2).Build(events[..3], Devices).Concat(new LakeBuilder(2).Build(events[3..], Devices)).ToList();

        Assert.Equal(events.Count, whole.Sum(g => g.Rows.Count));
        Assert.Equal(Speeds(whole), Speeds(split));
    }

    private static double? Double(RecordBatch batch, string column, int row) => ((DoubleArray)batch.Column(column)).GetValue(row);

    private static List<double?> Speeds(IEnumerable<(LakeDataset Dataset, DatasetRows Rows)> groups) =>
        groups.SelectMany(g =>
        {
            var batch = g.Rows.ToRecordBatch();
            return Enumerable.Range(0, batch.Length).Select(i => Double(batch, "speed_kmh", i));
        }).ToList();
}
