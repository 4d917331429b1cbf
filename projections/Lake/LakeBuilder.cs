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
                    AppendVehicle(RowsFor(LakeDatasets.Vehicle, accepted.DeviceTime), e, accepted);
                    break;
                case ReadingAccepted accepted:
                    AppendWeather(RowsFor(LakeDatasets.Weather, accepted.DeviceTime), e, accepted, device);
                    break;
                case ReadingRejected rejected:
                    RowsFor(LakeDatasets.Rejections, rejected.ReceivedAt)
                        .Text(e.Device).Text(device.Kind.ToWire()).Text(rejected.ReadingId).Integer(rejected.Seq).Text(rejected.Reason).Text(rejected.Detail)
                        .Time(rejected.ReceivedAt).Integer(e.Sequence)
                        .EndRow(e.Sequence);
                    break;
            }
        }
        return groups.Values.OrderBy(g => g.Item1.Name, StringComparer.Ordinal).ThenBy(g => g.Item2.Date).ToList();
    }

    private void AppendVehicle(DatasetRows rows, FeedEvent e, ReadingAccepted reading)
    {
        rows.Text(e.Device).Text(reading.ReadingId).Integer(reading.Seq).Time(reading.DeviceTime).Time(reading.ReceivedAt).Integer(e.Sequence);
        foreach (var signal in LakeDatasets.Vehicle.Signals)
        {
            if (!reading.Signals.TryGetValue(signal.Name, out var value))
            {
                rows.Number(null);
                continue;
            }
            // Coarsened: a buyer sees the neighbourhood, never the driveway.
            rows.Number(signal.Name is Core.Signals.SignalCatalog.Vehicle.Latitude or Core.Signals.SignalCatalog.Vehicle.Longitude ? Math.Round(value, locationDecimals, MidpointRounding.AwayFromZero) : value);
        }
        rows.EndRow(e.Sequence);
    }

    private static void AppendWeather(DatasetRows rows, FeedEvent e, ReadingAccepted reading, Device station)
    {
        rows.Text(e.Device).Text(reading.ReadingId).Integer(reading.Seq).Time(reading.DeviceTime).Time(reading.ReceivedAt).Integer(e.Sequence)
            .Number(Metadata(station, "latitude")).Number(Metadata(station, "longitude")).Number(Metadata(station, "elevation"));
        foreach (var signal in LakeDatasets.Weather.Signals) rows.Number(reading.Signals.TryGetValue(signal.Name, out var value) ? value : null);
        rows.EndRow(e.Sequence);
    }

    private static double? Metadata(Device device, string key) =>
        device.Metadata.TryGetValue(key, out var text) && double.TryParse(text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var value) ? value : null;
}
