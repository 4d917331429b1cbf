using Apache.Arrow;
using Apache.Arrow.Types;
using Pipeline.Marketplace.Attribution;

namespace Pipeline.Marketplace.Sandbox;

/// <summary>
/// Counts a result's delivered rows per device and epoch as they are written, when the result has the grant's device
/// column (text) and time column (a timestamp) by name: rows that name their device are attributed to it without a
/// second scan. The caller still checks the names against the grant's slice, since a query can make up any value.
/// </summary>
internal sealed class DeliveredRows
{
    private readonly int _device;
    private readonly int _time;
    private readonly long _epochSeconds;
    private readonly Dictionary<(string Device, long Epoch), long> _rows = [];

    private DeliveredRows(int device, int time, TimeSpan epochLength)
    {
        _device = device;
        _time = time;
        _epochSeconds = (long)epochLength.TotalSeconds;
    }

    /// <summary>A counter for results of this schema, or null when it does not carry both columns of the only grant.</summary>
    public static DeliveredRows? For(Schema schema, IEnumerable<GrantedTable> grants, TimeSpan epochLength)
    {
        if (grants.ToList() is not [var grant] || epochLength < TimeSpan.FromSeconds(1)) return null;
        var device = schema.GetFieldIndex(grant.Shape.DeviceColumn);
        var time = schema.GetFieldIndex(grant.Shape.TimeColumn);
        if (device < 0 || time < 0) return null;
        if (schema.GetFieldByIndex(device).DataType is not (StringType or StringViewType)) return null;
        if (schema.GetFieldByIndex(time).DataType is not TimestampType) return null;
        return new DeliveredRows(device, time, epochLength);
    }

    /// <summary>A counter for results whose last two columns are the view's device and time, carried along by <see cref="CarriedColumns"/>.</summary>
    public static DeliveredRows? Last(Schema schema, TimeSpan epochLength) => epochLength < TimeSpan.FromSeconds(1) ? null
        : new(schema.FieldsList.Count - CarriedColumns.Count, schema.FieldsList.Count - CarriedColumns.Count + 1, epochLength);

    public void Count(RecordBatch batch, int rows)
    {
        var devices = batch.Column(_device);
        var times = (TimestampArray)batch.Column(_time);
        for (var i = 0; i < rows; i++)
        {
            var device = devices switch
            {
                StringArray a => a.GetString(i),
                StringViewArray a => a.GetString(i),
                _ => null,
            };
            // A row without a device or time cannot name whose it is: an empty name matches no share of the slice.
            var epoch = times.GetTimestamp(i) is { } time ? EpochOf(time.ToUnixTimeSeconds(), _epochSeconds) : long.MinValue;
            var key = (device ?? "", epoch);
            _rows[key] = _rows.GetValueOrDefault(key) + 1;
        }
    }

    /// <summary>The epoch of a time in Unix seconds: floor(seconds ÷ epoch length), as the slice's SQL counts it.</summary>
    public static long EpochOf(long unixSeconds, long epochSeconds)
    {
        var (quotient, remainder) = Math.DivRem(unixSeconds, epochSeconds);
        return remainder < 0 ? quotient - 1 : quotient;
    }

    public IReadOnlyList<DeviceShare> Shares() => _rows.Select(r => new DeviceShare(r.Key.Device, r.Key.Epoch, r.Value)).ToList();
}
