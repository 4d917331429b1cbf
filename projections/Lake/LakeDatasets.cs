using Apache.Arrow;
using Apache.Arrow.Types;
using Pipeline.Core.Envelope;
using Pipeline.Core.Signals;

namespace Pipeline.Projections.Lake;

/// <summary>A dataset written to the lake: its name (the folder), its Arrow schema, and the column of each signal.</summary>
public sealed record LakeDataset(string Name, Schema Schema, IReadOnlyList<SignalDefinition> Signals);

/// <summary>
/// The lake's written datasets. One row per reading: identity and times first, then a typed column per signal of the
/// catalog in its unit (the column names carry the unit). Vehicle coordinates are coarsened; raw positions never leave
/// the store. Partitioned by day (UTC) of the device time, or of the receive time for rejections.
/// </summary>
public static class LakeDatasets
{
    public const string VehicleSignals = "vehicle_signals";
    public const string WeatherObservations = "weather_observations";
    public const string ReadingRejections = "reading_rejections";

    private static readonly TimestampType Timestamp = new(TimeUnit.Microsecond, "UTC");

    public static LakeDataset Vehicle { get; } = Create(VehicleSignals, DeviceKind.Vehicle,
        [("device", StringType.Default, false), ("reading_id", StringType.Default, false), ("seq", Int64Type.Default, false),
         ("device_time", Timestamp, false), ("received_at", Timestamp, false), ("event_seq", Int64Type.Default, false)]);

    public static LakeDataset Weather { get; } = Create(WeatherObservations, DeviceKind.Weather,
        [("station", StringType.Default, false), ("reading_id", StringType.Default, false), ("seq", Int64Type.Default, false),
         ("device_time", Timestamp, false), ("received_at", Timestamp, false), ("event_seq", Int64Type.Default, false),
         ("station_latitude", DoubleType.Default, true), ("station_longitude", DoubleType.Default, true), ("station_elevation_m", DoubleType.Default, true)]);

    public static LakeDataset Rejections { get; } = new(ReadingRejections, Build(
        [("device", StringType.Default, false), ("kind", StringType.Default, false), ("reading_id", StringType.Default, false), ("seq", Int64Type.Default, false),
         ("reason", StringType.Default, false), ("detail", StringType.Default, false), ("received_at", Timestamp, false), ("event_seq", Int64Type.Default, false)]), []);

    public static IReadOnlyList<LakeDataset> All { get; } = [Vehicle, Weather, Rejections];

    private static LakeDataset Create(string name, DeviceKind kind, (string Name, IArrowType Type, bool Nullable)[] fixedColumns)
    {
        var signals = SignalCatalog.For(kind).ToList();
        var columns = fixedColumns.Concat(signals.Select(s => (s.Column, (IArrowType)DoubleType.Default, true))).ToArray();
        return new LakeDataset(name, Build(columns), signals);
    }

    private static Schema Build((string Name, IArrowType Type, bool Nullable)[] columns)
    {
        var builder = new Schema.Builder();
        foreach (var (name, type, nullable) in columns) builder.Field(f => f.Name(name).DataType(type).Nullable(nullable));
        return builder.Build();
    }
}

/// <summary>Rows of one dataset for one day, gathered column by column into an Arrow record batch.</summary>
public sealed class DatasetRows
{
    private readonly LakeDataset _dataset;
    private readonly IArrowArrayBuilder[] _builders;

    public DatasetRows(LakeDataset dataset, DateOnly date)
    {
        _dataset = dataset;
        Date = date;
        _builders = dataset.Schema.FieldsList.Select(f => f.DataType switch
        {
            StringType => (IArrowArrayBuilder)new StringArray.Builder(),
            Int64Type => new Int64Array.Builder(),
            TimestampType t => new TimestampArray.Builder(t),
            DoubleType => new DoubleArray.Builder(),
            _ => throw new NotSupportedException(f.DataType.Name),
        }).ToArray();
    }

    public DateOnly Date { get; }
    public int Count { get; private set; }
    public long FirstSequence { get; private set; } = long.MaxValue;
    public long LastSequence { get; private set; }

    // A row is appended column by column, in schema order, each value straight into its column's builder: no row of
    // boxed values per reading. EndRow checks that every column got its value.
    private int _column;

    public DatasetRows Text(string value)
    {
        ((StringArray.Builder)_builders[_column++]).Append(value);
        return this;
    }

    public DatasetRows Integer(long value)
    {
        ((Int64Array.Builder)_builders[_column++]).Append(value);
        return this;
    }

    public DatasetRows Time(DateTimeOffset value)
    {
        ((TimestampArray.Builder)_builders[_column++]).Append(value);
        return this;
    }

    public DatasetRows Number(double? value)
    {
        var builder = (DoubleArray.Builder)_builders[_column++];
        if (value is { } number) builder.Append(number);
        else builder.AppendNull();
        return this;
    }

    /// <summary>Ends the row begun by the appends since the last one; it came from the event at <paramref name="eventSequence"/>.</summary>
    public void EndRow(long eventSequence)
    {
        if (_column != _builders.Length) throw new InvalidOperationException($"A row of {_dataset.Name} got {_column} of its {_builders.Length} columns.");
        _column = 0;
        Count++;
        FirstSequence = Math.Min(FirstSequence, eventSequence);
        LastSequence = Math.Max(LastSequence, eventSequence);
    }

    public RecordBatch ToRecordBatch() => new(_dataset.Schema, _builders.Select(b => b switch
    {
        StringArray.Builder s => (IArrowArray)s.Build(),
        Int64Array.Builder l => l.Build(),
        TimestampArray.Builder t => t.Build(),
        DoubleArray.Builder d => d.Build(),
        _ => throw new NotSupportedException(),
    }).ToArray(), Count);
}
