using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Core.Events;
using Pipeline.Projections.Lake;
using Pipeline.Registry;
using Pipeline.Rewards.Epochs;
using Pipeline.Rewards.Stage;
using V = Pipeline.Core.Signals.SignalCatalog.Vehicle;
using W = Pipeline.Core.Signals.SignalCatalog.Weather;

namespace Pipeline.Tests.Integration.Rewards;

/// <summary>
/// Issue 16 (the chaos run's "closed epochs equal to a recomputation" failing 2 times in 5): an epoch's inputs read from
/// the live lake and again from a rebuilt one must be equal, yet the two hold the same rows in other files and orders.
/// A mean taken as a sum of doubles depends on that order, and where the exact mean is a tie (21.4015 °C to thousandths,
/// 820,312.5 ppm) the rounding went either way. Read back by DuckDB from Parquet the project wrote, in two orders.
/// </summary>
[Trait("Category", "Integration")]
public sealed class EpochLakeInputsTests : IDisposable
{
    private static readonly TimeSpan EpochLength = TimeSpan.FromHours(1);
    private static readonly DateTimeOffset Morning = new(2026, 11, 23, 1, 0, 0, TimeSpan.Zero);
    private static readonly long Epoch = (long)((Morning - DateTimeOffset.UnixEpoch) / EpochLength);
    private const string Station = "0x00000000000000000000000000000000000000a1";
    private const string Car = "0x00000000000000000000000000000000000000c1";
    private static readonly EthAddress CarAddress = EthAddress.Parse(Car);
    private readonly string _folder = Directory.CreateTempSubdirectory("depin-epoch-inputs-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void EpochLakeInputs_SameRowsInReverseOrder_GiveTheSameMeansAndCompleteness_Issue16()
    {
        var temperatures = FindOrderSensitive(random => Math.Round(15 + random.NextDouble() * 10, 3), count: 4, scale: 1_000);
        var completeness = FindOrderSensitive(random => random.Next(1, 5) switch { 1 => 1, 2 => 2, _ => 3 } / 3.0, count: 128, scale: 1_000_000);

        var forward = Read("forward", temperatures, completeness);
        var reversed = Read("reversed", [.. temperatures.AsEnumerable().Reverse()], [.. completeness.AsEnumerable().Reverse()]);

        var station = Assert.Single(forward.Stations);
        Assert.Equal(ExactMeanMilli(temperatures), station.MeansMilli["temperature_c"]);
        Assert.Equal(station.MeansMilli, Assert.Single(reversed.Stations).MeansMilli);
        var car = forward.Devices.Single(d => d.Device == CarAddress);
        Assert.Equal(car.CompletenessPpm, reversed.Devices.Single(d => d.Device == CarAddress).CompletenessPpm);
        Assert.Equal(forward.Devices.Select(d => (d.Device, d.CompletenessPpm, d.UptimePpm)), reversed.Devices.Select(d => (d.Device, d.CompletenessPpm, d.UptimePpm)));
    }

    [Theory]
    [InlineData(21_401_500, 1, 21_402)]
    [InlineData(21_402_500, 1, 21_402)]
    [InlineData(-21_401_500, 1, -21_402)]
    [InlineData(-21_402_500, 1, -21_402)]
    [InlineData(65_442_000, 4, 16_360)]
    [InlineData(7, 3, 0)]
    [InlineData(-1_600, 1, -2)]
    public void MeanMilli_OfMillionths_RoundsHalfToEven(long sumMicro, long count, long expected) =>
        Assert.Equal(expected, EpochInputsReader.MeanMilli(sumMicro, count));

    /// <summary>
    /// Values from a seeded generator whose mean, taken as a running sum of doubles, rounds to a different whole number
    /// (in units of 1/<paramref name="scale"/>) forwards than backwards — the case the order of rows decided.
    /// </summary>
    private static double[] FindOrderSensitive(Func<Random, double> next, int count, long scale)
    {
        var random = new Random(16);
        for (var attempt = 0; attempt < 100_000; attempt++)
        {
            var values = Enumerable.Range(0, count).Select(_ => next(random)).ToArray();
            if (NaiveRounded(values, scale) != NaiveRounded([.. values.AsEnumerable().Reverse()], scale)) return values;
        }
        throw new InvalidOperationException("No order-sensitive values found: the test would show nothing.");
    }

    private static long NaiveRounded(double[] values, long scale)
    {
        var sum = 0.0;
        foreach (var value in values) sum += value;
        return (long)Math.Round(sum / values.Length * scale, MidpointRounding.ToEven);
    }

    private static long ExactMeanMilli(double[] values) => (long)Math.Round(values.Sum(v => (decimal)v) / values.Length * 1000, MidpointRounding.ToEven);

    /// <summary>A lake of one weather file and one vehicle file holding the given readings in the given order.</summary>
    private (List<DeviceEpochQuality> Devices, List<StationEpochMeans> Stations) Read(string name, double[] temperatures, double[] completeness)
    {
        var devices = new Dictionary<string, Device>
        {
            [Station] = new() { Id = Station, Kind = DeviceKind.Weather, Metadata = { ["latitude"] = "48.137", ["longitude"] = "11.575" } },
            [Car] = new() { Id = Car, Kind = DeviceKind.Vehicle },
        };
        var sequence = 0L;
        FeedEvent Reading(string device, Dictionary<string, double> signals)
        {
            sequence++;
            return new FeedEvent(sequence, device, new ReadingAccepted($"0x{sequence:x64}", sequence, Morning.AddSeconds(sequence), Morning.AddSeconds(sequence), signals, 0, sequence));
        }
        var events = temperatures.Select(t => Reading(Station, new() { [W.Temperature] = t }))
            .Concat(completeness.Select(c => Reading(Car, VehicleSignals((int)Math.Round(c * 3)))))
            .ToList();

        var directory = Path.Combine(_folder, name);
        var files = new List<LakeFile>();
        foreach (var (dataset, rows) in new LakeBuilder(locationDecimals: 2).Build(events, devices))
        {
            var path = Path.Combine(dataset.Name, $"date={rows.Date:yyyy-MM-dd}", "part.parquet");
            Directory.CreateDirectory(Path.GetDirectoryName(Path.Combine(directory, path))!);
            ParquetFiles.Write(Path.Combine(directory, path), dataset.Schema, [rows.ToRecordBatch()]);
            files.Add(new LakeFile(path, dataset.Name, rows.Date, 1, sequence, rows.Count, ""));
        }
        return EpochInputsReader.ReadLake(directory, files, EpochLength, Epoch, sequence, ["temperature_c"]);
    }

    /// <summary>Speed, latitude and longitude: the first <paramref name="present"/> of them.</summary>
    private static Dictionary<string, double> VehicleSignals(int present) =>
        new[] { (V.Speed, 50.0), (V.Latitude, 48.1), (V.Longitude, 11.5) }.Take(present).ToDictionary(s => s.Item1, s => s.Item2);
}
