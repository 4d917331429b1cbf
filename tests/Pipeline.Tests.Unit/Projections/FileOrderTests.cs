using Apache.Arrow;
using Pipeline.Core.Envelope;
using Pipeline.Core.Events;
using Pipeline.Projections.Lake;
using Pipeline.Registry;
using V = Pipeline.Core.Signals.SignalCatalog.Vehicle;

namespace Pipeline.Tests.Unit.Projections;

/// <summary>Compaction's order: by device, then time, then event sequence, across batches, every value and null kept.</summary>
public sealed class FileOrderTests
{
    private const string CarA = "0x00000000000000000000000000000000000000a1";
    private const string CarB = "0x00000000000000000000000000000000000000b1";
    private static readonly DateTimeOffset Noon = new(2026, 11, 23, 12, 0, 0, TimeSpan.Zero);

    private static readonly Dictionary<string, Device> Devices = new()
    {
        [CarA] = new Device { Id = CarA, Kind = DeviceKind.Vehicle },
        [CarB] = new Device { Id = CarB, Kind = DeviceKind.Vehicle },
    };

    private static RecordBatch Batch(params (long Sequence, string Device, int Second, double? Speed)[] readings)
    {
        var events = readings.Select(r => new FeedEvent(r.Sequence, r.Device, new ReadingAccepted($"0x{r.Sequence:x64}", r.Sequence, Noon.AddSeconds(r.Second), Noon,
            r.Speed is { } speed ? new Dictionary<string, double> { [V.Speed] = speed } : new Dictionary<string, double> { [V.Odometer] = 1 }, 0, r.Sequence)));
        return new LakeBuilder(locationDecimals: 2).Build(events, Devices).Single().Rows.ToRecordBatch();
    }

    [Fact]
    public void RowsOfSeveralBatches_ComeOutByDeviceThenTimeThenSequence_WithTheirValuesAndNulls()
    {
        // Events arrive interleaved across devices, and a device's clock can run behind the event order.
        var first = Batch((1, CarB, 5, 50), (2, CarA, 9, null), (3, CarA, 3, 30));
        var second = Batch((4, CarB, 1, 10), (5, CarA, 3, 31), (6, CarB, 5, null));

        var sorted = FileOrder.Sort(LakeDatasets.Vehicle.Schema, [first, second]);

        Assert.Equal(6, sorted.Length);
        Assert.Equal([3L, 5, 2, 4, 1, 6], ((Int64Array)sorted.Column("event_seq")).Values.ToArray());
        Assert.Equal([CarA, CarA, CarA, CarB, CarB, CarB], Enumerable.Range(0, 6).Select(i => ((StringArray)sorted.Column("device")).GetString(i)));
        Assert.Equal([30.0, 31, null, 10, 50, null], Enumerable.Range(0, 6).Select(i => ((DoubleArray)sorted.Column("speed_kmh")).GetValue(i)));
        Assert.Equal([null, null, 1.0, null, null, 1], Enumerable.Range(0, 6).Select(i => ((DoubleArray)sorted.Column("odometer_km")).GetValue(i)));
        Assert.Equal([3, 3, 9, 1, 5, 5], Enumerable.Range(0, 6).Select(i => (int)(((TimestampArray)sorted.Column("device_time")).GetTimestamp(i)!.Value - Noon).TotalSeconds));
        Assert.Equal(LakeDatasets.Vehicle.Schema.FieldsList.Select(f => f.DataType.TypeId), sorted.Schema.FieldsList.Select(f => f.DataType.TypeId));
    }

    [Fact]
    public void SameRowsInAnyBatchOrder_SortTheSame()
    {
        var first = Batch((1, CarB, 5, 50), (2, CarA, 9, null));
        var second = Batch((3, CarA, 9, 12), (4, CarB, 1, 10));

        var once = FileOrder.Sort(LakeDatasets.Vehicle.Schema, [first, second]);
        var reversed = FileOrder.Sort(LakeDatasets.Vehicle.Schema, [second, first]);

        Assert.Equal(((Int64Array)once.Column("event_seq")).Values.ToArray(), ((Int64Array)reversed.Column("event_seq")).Values.ToArray());
        Assert.Equal([2L, 3, 4, 1], ((Int64Array)once.Column("event_seq")).Values.ToArray());
    }

    [Fact]
    public void InOrder_RowsAlreadyInFileOrder_ReturnsTheBatchItselfWithNothingCopied()
    {
        var batch = Batch((1, CarA, 1, 10), (2, CarA, 2, null), (3, CarB, 1, 30));

        Assert.Same(batch, FileOrder.InOrder(LakeDatasets.Vehicle.Schema, batch));
    }

    [Fact]
    public void InOrder_RowsInArrivalOrder_ComeOutByDeviceThenTimeThenSequence_WithTheirValuesAndNulls()
    {
        // Issue 16: a round is sorted alone, as it arrives (every device's readings interleaved).
        var arriving = Batch((1, CarB, 5, 50), (2, CarA, 9, null), (3, CarA, 3, 30), (4, CarB, 1, 10));

        var sorted = FileOrder.InOrder(LakeDatasets.Vehicle.Schema, arriving);

        Assert.NotSame(arriving, sorted);
        Assert.Equal([3L, 2, 4, 1], ((Int64Array)sorted.Column("event_seq")).Values.ToArray());
        Assert.Equal([CarA, CarA, CarB, CarB], Enumerable.Range(0, 4).Select(i => ((StringArray)sorted.Column("device")).GetString(i)));
        Assert.Equal([$"0x{3:x64}", $"0x{2:x64}", $"0x{4:x64}", $"0x{1:x64}"], Enumerable.Range(0, 4).Select(i => ((StringArray)sorted.Column("reading_id")).GetString(i)));
        Assert.Equal([30.0, null, 10, 50], Enumerable.Range(0, 4).Select(i => ((DoubleArray)sorted.Column("speed_kmh")).GetValue(i)));
        Assert.Equal([null, 1.0, null, null], Enumerable.Range(0, 4).Select(i => ((DoubleArray)sorted.Column("odometer_km")).GetValue(i)));
    }
}
