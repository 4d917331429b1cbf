using Pipeline.Core.Envelope;
using Pipeline.Core.Events;
using Pipeline.Registry;

namespace Pipeline.Projections.Lake;

/// <summary>
/// Turns events into rows, grouped by dataset and day: a pure function of the events and the registry, so a rebuild
/// from the store yields the same rows as the incremental lake.
/// </summary>
public sealed class LakeBuilder(int locationDecimals)
{
    public IReadOnlyList<(LakeDataset Dataset, DatasetRows Rows)> Build(IEnumerable<FeedEvent> events, IReadOnlyDictionary<string, Device> devices)
    {
        var groups = new Dictionary<(string, DateOnly), (LakeDataset, DatasetRows)>();
        DatasetRows RowsFor(LakeDataset dataset, DateTimeOffset time)
        {
            var date = DateOnly.FromDateTime(time.UtcDateTime);
            if (!groups.TryGetValue((dataset.Name, date), out var group)) groups[(dataset.Name, date)] = group = (dataset, new DatasetRows(dataset, date));
            return group.Item2;
        }

        foreach (var e in events)
        {
            // Only registered devices have reading events; a device missing here would be a store inconsistency.
            var device = devices[e.Device];
            switch (e.Data)
            {
                case ReadingAccepted accepted when device.Kind == DeviceKind.Vehicle:
                    RowsFor(LakeDatasets.Vehicle, accepted.DeviceTime).Append(e.Sequence, VehicleRow(e, accepted));
                    break;
                case ReadingAccepted accepted:
                    RowsFor(LakeDatasets.Weather, accepted.DeviceTime).Append(e.Sequence, WeatherRow(e, accepted, device));
                    break;
                case ReadingRejected rejected:
                    RowsFor(LakeDatasets.Rejections, rejected.ReceivedAt).Append(e.Sequence,
                        e.Device, device.Kind.ToWire(), rejected.ReadingId, rejected.Seq, rejected.Reason, rejected.Detail, rejected.ReceivedAt, e.Sequence);
                    break;
            }
        }
        return groups.Values.OrderBy(g => g.Item1.Name, StringComparer.Ordinal).ThenBy(g => g.Item2.Date).ToList();
    }

    private object?[] VehicleRow(FeedEvent e, ReadingAccepted reading)
    {
        var row = new List<object?> { e.Device, reading.ReadingId, reading.Seq, reading.DeviceTime, reading.ReceivedAt, e.Sequence };
        foreach (var signal in LakeDatasets.Vehicle.Signals)
        {
            if (!reading.Signals.TryGetValue(signal.Name, out var value))
            {
                row.Add(null);
                continue;
            }
            // Coarsened: a buyer sees the neighbourhood, never the driveway.
            row.Add(signal.Name is Core.Signals.SignalCatalog.Vehicle.Latitude or Core.Signals.SignalCatalog.Vehicle.Longitude ? Math.Round(value, locationDecimals, MidpointRounding.AwayFromZero) : value);
        }
        return [.. row];
    }

    private static object?[] WeatherRow(FeedEvent e, ReadingAccepted reading, Device station)
    {
        var row = new List<object?>
        {
            e.Device, reading.ReadingId, reading.Seq, reading.DeviceTime, reading.ReceivedAt, e.Sequence,
            Metadata(station, "latitude"), Metadata(station, "longitude"), Metadata(station, "elevation"),
        };
        foreach (var signal in LakeDatasets.Weather.Signals) row.Add(reading.Signals.TryGetValue(signal.Name, out var value) ? value : null);
        return [.. row];
    }

    private static double? Metadata(Device device, string key) =>
        device.Metadata.TryGetValue(key, out var text) && double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var value) ? value : null;
}
