using System.Globalization;
using DuckDB.NET.Data;
using Marten;
using Microsoft.Extensions.Logging;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Core.Events;
using Pipeline.Projections.Lake;
using Pipeline.Rewards.Epochs;

namespace Pipeline.Rewards.Stage;

/// <summary>Which lake an epoch is read from: the live one, or a rebuilt one beside it.</summary>
public sealed record LakeSource(string Name, string Directory);

/// <summary>
/// Gathers a closed epoch's inputs, all as of event sequence <c>through</c> so that reading them again (after a lake
/// rebuild, say) gives the same: device_quality rows and station means from the lake, each device's owner at the
/// epoch's end from the registry's events, and the sales recorded between the previous close and this one.
/// </summary>
public sealed class EpochInputsReader(IDocumentStore store, LakeStore lake, ILogger<EpochInputsReader> logger)
{
    private static readonly string[] OwnershipEvents = [EventNames.All[typeof(DeviceRegistered)], EventNames.All[typeof(OwnershipTransferred)]];
    // A sale per charge, and per device and epoch as sales were first written (still read: a running network has them).
    private static readonly string[] SaleEvents = [EventNames.All[typeof(SalesAttributed)], EventNames.All[typeof(DataSold)]];

    public async Task<EpochInputs> ReadAsync(RewardPolicy policy, EpochClosed closed, TimeSpan epochLength, LakeSource source, CancellationToken cancellation)
    {
        var files = await lake.Manifest(source.Name).FilesAsync(cancellation);
        var (devices, stations) = ReadLake(source.Directory, files, epochLength, closed.Epoch, closed.ThroughSequence, policy.Agreement.ToleranceMilli.Keys);
        var sales = await SalesAsync(closed.SalesAfterSequence, closed.ThroughSequence, cancellation);
        var owners = await OwnersAtAsync(devices.Select(d => d.Device).Concat(sales.Select(s => s.Device)), closed.End, closed.ThroughSequence, cancellation);

        // Anyone can sign a reading with a device time in the past: a device registered after the epoch's end can have
        // rows in it. Nobody owned it then, so it earns nothing for that epoch.
        var unowned = devices.Where(d => !owners.ContainsKey(d.Device)).Select(d => d.Device).Concat(sales.Where(s => !owners.ContainsKey(s.Device)).Select(s => s.Device)).ToHashSet();
        if (unowned.Count > 0)
            logger.LogInformation("Epoch {Epoch}: {Count} devices with rows had no owner at the epoch's end (registered later) and earn nothing for it", closed.Epoch, unowned.Count);
        var counted = devices.Where(d => !unowned.Contains(d.Device)).ToList();
        var sold = sales.Where(s => !unowned.Contains(s.Device)).ToList();
        var paid = counted.Select(d => d.Device).Concat(sold.Select(s => s.Device)).ToHashSet();
        return new EpochInputs(
            closed.Epoch,
            counted,
            stations.Where(s => !unowned.Contains(s.Station)).ToList(),
            owners.Where(o => paid.Contains(o.Key)).Select(o => new DeviceOwner(o.Key, o.Value)).ToList(),
            sold).Sorted();
    }

    /// <summary>
    /// The lake's part of an epoch's inputs, as of event <paramref name="through"/>: each device's quality and each
    /// station's means. Exact whatever order the rows come in (files compacted or rebuilt differently, DuckDB's threads):
    /// fractions are quotients of whole counts and means are of values fixed to millionths, never sums of doubles; both
    /// lists in address order.
    /// </summary>
    public static (List<DeviceEpochQuality> Devices, List<StationEpochMeans> Stations) ReadLake(
        string directory, IReadOnlyList<LakeFile> files, TimeSpan epochLength, long epoch, long through, IEnumerable<string> signals)
    {
        using var duck = LakeCatalog.Open(directory, files, epochLength, through);
        return (ReadQuality(duck, epoch), ReadStations(duck, epoch, epochLength, signals));
    }

    private static List<DeviceEpochQuality> ReadQuality(DuckDBConnection duck, long epoch)
    {
        var reasons = new Dictionary<string, Dictionary<string, long>>();
        using (var command = duck.CreateCommand())
        {
            command.CommandText = $"""
                SELECT device, unnest(map_keys(rejections_by_reason)), unnest(map_values(rejections_by_reason))
                FROM {LakeCatalog.DeviceQuality} WHERE epoch = {epoch.ToString(CultureInfo.InvariantCulture)}
                """;
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                var device = reader.GetString(0);
                if (!reasons.TryGetValue(device, out var counts)) reasons[device] = counts = [];
                counts[reader.GetString(1)] = Convert.ToInt64(reader.GetValue(2), CultureInfo.InvariantCulture);
            }
        }
        var rows = new List<DeviceEpochQuality>();
        using (var command = duck.CreateCommand())
        {
            command.CommandText = $"""
                SELECT device, kind, accepted, rejected, uptime, completeness, equivocations
                FROM {LakeCatalog.DeviceQuality} WHERE epoch = {epoch.ToString(CultureInfo.InvariantCulture)}
                ORDER BY device
                """;
            using var reader = command.ExecuteReader();
            while (reader.Read())
            {
                var device = reader.GetString(0);
                // The lake holds only registered devices' rows, in lower-case hex: anything else is not a device.
                if (!EthAddress.TryParse(device.AsSpan(), out var address)) continue;
                var kind = reader.GetString(1) == "weather" ? DeviceKind.Weather : DeviceKind.Vehicle;
                rows.Add(DeviceEpochQuality.FromLake(address, kind, Convert.ToInt64(reader.GetValue(2), CultureInfo.InvariantCulture),
                    Convert.ToInt64(reader.GetValue(3), CultureInfo.InvariantCulture), Convert.ToDouble(reader.GetValue(4), CultureInfo.InvariantCulture),
                    Convert.ToDouble(reader.GetValue(5), CultureInfo.InvariantCulture), Convert.ToInt64(reader.GetValue(6), CultureInfo.InvariantCulture),
                    reasons.GetValueOrDefault(device) ?? []));
            }
        }
        return rows;
    }

    /// <summary>
    /// Each station's registered position (as of its last row in the epoch) and its epoch means of the signals the
    /// policy compares, in thousandths: the mean of the values rounded to millionths, rounded half to even.
    /// </summary>
    private static List<StationEpochMeans> ReadStations(DuckDBConnection duck, long epoch, TimeSpan epochLength, IEnumerable<string> signals)
    {
        // The policy's signal names were checked against the weather catalog's columns when it loaded. A sum of doubles
        // depends on the order it is taken in, and a mean on a tie (21.4015 °C) would round either way: sum whole
        // millionths instead. The catalog's ranges bound each value, so the sums fit a BIGINT.
        var columns = signals.Order(StringComparer.Ordinal).ToList();
        var sums = string.Concat(columns.Select(c => $", CAST(sum(CAST(round({c} * 1e6) AS BIGINT)) AS BIGINT), count({c})"));
        var seconds = ((long)epochLength.TotalSeconds).ToString(CultureInfo.InvariantCulture);
        using var command = duck.CreateCommand();
        command.CommandText = $"""
            SELECT station, arg_max(station_latitude, event_seq), arg_max(station_longitude, event_seq){sums}
            FROM weather_observations
            WHERE CAST(floor(epoch(device_time) / {seconds}) AS BIGINT) = {epoch.ToString(CultureInfo.InvariantCulture)}
            GROUP BY station ORDER BY station
            """;
        var stations = new List<StationEpochMeans>();
        using var reader = command.ExecuteReader();
        while (reader.Read())
        {
            if (!EthAddress.TryParse(reader.GetString(0).AsSpan(), out var station) || reader.IsDBNull(1) || reader.IsDBNull(2)) continue;
            var milli = new Dictionary<string, long>();
            for (var i = 0; i < columns.Count; i++)
            {
                var count = reader.GetInt64(4 + 2 * i);
                if (count > 0) milli[columns[i]] = MeanMilli(reader.GetInt64(3 + 2 * i), count);
            }
            stations.Add(new StationEpochMeans(station, Micro(reader.GetDouble(1)), Micro(reader.GetDouble(2)), milli));
        }
        return stations;
    }

    /// <summary>The mean of <paramref name="count"/> values summing to <paramref name="sumMicro"/> millionths, in thousandths, half to even.</summary>
    public static long MeanMilli(long sumMicro, long count)
    {
        var divisor = (Int128)count * 1000;
        var quotient = Int128.DivRem(sumMicro, divisor);
        var twice = Int128.Abs(quotient.Remainder) * 2;
        var away = twice > divisor || (twice == divisor && !Int128.IsEvenInteger(quotient.Quotient));
        return (long)(away ? quotient.Quotient + Int128.Sign(quotient.Remainder) : quotient.Quotient);
    }

    private static long Micro(double degrees) => (long)Math.Round(degrees * 1e6, MidpointRounding.ToEven);

    /// <summary>
    /// The owner at <paramref name="end"/> of each of <paramref name="devices"/> (those with rows or sales in the epoch):
    /// registrations and transfers before it, in the order they were recorded. Only those devices' streams are read — every
    /// registration and transfer ever recorded was, at every epoch's close.
    /// </summary>
    public async Task<Dictionary<EthAddress, EthAddress>> OwnersAtAsync(IEnumerable<EthAddress> devices, DateTimeOffset end, long through, CancellationToken cancellation)
    {
        var streams = devices.Select(d => d.ToLowerHex()).Distinct().ToArray();
        if (streams.Length == 0) return [];
        await using var session = store.QuerySession();
        var events = await session.Events.QueryAllRawEvents()
            .Where(e => streams.Contains(e.StreamKey) && e.Sequence <= through && OwnershipEvents.Contains(e.EventTypeName))
            .OrderBy(e => e.Sequence)
            .ToListAsync(cancellation);
        var owners = new Dictionary<EthAddress, EthAddress>();
        foreach (var e in events)
        {
            var (device, owner, at) = e.Data switch
            {
                DeviceRegistered r => (r.Device, r.Owner, r.RegisteredAt),
                OwnershipTransferred t => (t.Device, t.NewOwner, t.TransferredAt),
                _ => throw new InvalidDataException($"Event {e.Sequence} is not a registration or a transfer."),
            };
            if (at >= end) continue;
            if (EthAddress.TryParse(device.AsSpan(), out var d) && EthAddress.TryParse(owner.AsSpan(), out var o)) owners[d] = o;
        }
        return owners;
    }

    /// <summary>The sales recorded in (<paramref name="after"/>, <paramref name="through"/>], per device: each sale is paid in exactly one epoch.</summary>
    public async Task<List<DeviceSales>> SalesAsync(long after, long through, CancellationToken cancellation)
    {
        await using var session = store.QuerySession();
        var events = await session.Events.QueryAllRawEvents()
            .Where(e => e.Sequence > after && e.Sequence <= through && SaleEvents.Contains(e.EventTypeName))
            .ToListAsync(cancellation);
        return events.SelectMany(e => e.Data switch
            {
                SalesAttributed sale => sale.Lines,
                DataSold old => old.AsAttribution().Lines,
                _ => throw new InvalidDataException($"Event {e.Sequence} is not a sale."),
            })
            .Where(s => EthAddress.TryParse(s.Device.AsSpan(), out _))
            .GroupBy(s => EthAddress.Parse(s.Device))
            .Select(g => new DeviceSales(g.Key, g.Sum(s => s.Rows), g.Sum(s => s.Credits)))
            .ToList();
    }
}
