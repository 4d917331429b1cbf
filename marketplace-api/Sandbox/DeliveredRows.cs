using Apache.Arrow;
using Pipeline.Marketplace.Attribution;

namespace Pipeline.Marketplace.Sandbox;

/// <summary>
/// Counts a result's delivered rows per device and epoch as they are written, from the view's device (text) and time
/// (a timestamp) carried along as the result's last two columns: rows are attributed to their devices without a second scan.
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
