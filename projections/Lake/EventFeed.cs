using System.Text.Json;
using System.Text.Json.Serialization;
using Npgsql;
using NpgsqlTypes;
using Pipeline.Core.Events;
using Pipeline.Infra.Stack;

namespace Pipeline.Projections.Lake;

/// <summary>An event the lake cares about, with its global sequence in the store.</summary>
public sealed record FeedEvent(long Sequence, string Device, object Data);

/// <summary>
/// Reads reading events in global sequence order, never past a point where a gap could still fill. Sequence numbers
/// are taken inside the appending transactions and can commit out of order; the feed reads up to the highest sequence
/// visible in a snapshot only once every transaction in flight at that snapshot has ended, so each range it returns is
/// final: nothing can later appear below its end.
/// </summary>
public sealed class EventFeed(DevStack stack)
{
    private static readonly string[] Types = [EventNames.All[typeof(ReadingAccepted)], EventNames.All[typeof(ReadingRejected)]];

    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { Converters = { new JsonStringEnumConverter() } };

    private readonly string _schema = stack.Store.Options.DatabaseSchemaName;

    /// <summary>The events after <paramref name="after"/> up to a safe ceiling (at most <paramref name="max"/>), and the sequence the caller may checkpoint.</summary>
    public async Task<(IReadOnlyList<FeedEvent> Events, long Through)> ReadAsync(long after, int max, long? until, CancellationToken cancellation)
    {
        await using var connection = new NpgsqlConnection(stack.PostgresConnectionString);
        await connection.OpenAsync(cancellation);
        var ceiling = await SafeCeilingAsync(connection, cancellation);
        if (until is { } limit) ceiling = Math.Min(ceiling, limit);
        if (ceiling <= after) return ([], after);

        await using var command = new NpgsqlCommand($"""
            SELECT seq_id, stream_id, type, data::text FROM {_schema}.mt_events
            WHERE seq_id > $1 AND seq_id <= $2 AND type = ANY($3)
            ORDER BY seq_id LIMIT $4
            """, connection)
        {
            Parameters =
            {
                new() { Value = after }, new() { Value = ceiling },
                new() { Value = Types, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text }, new() { Value = max },
            },
        };
        var events = new List<FeedEvent>();
        await using var reader = await command.ExecuteReaderAsync(cancellation);
        while (await reader.ReadAsync(cancellation))
        {
            var json = reader.GetString(3);
            object data = reader.GetString(2) == Types[0]
                ? JsonSerializer.Deserialize<ReadingAccepted>(json, Json)!
                : JsonSerializer.Deserialize<ReadingRejected>(json, Json)!;
            events.Add(new FeedEvent(reader.GetInt64(0), reader.GetString(1), data));
        }
        // A full page ends at its last event; otherwise everything up to the ceiling has been seen.
        return (events, events.Count == max ? events[^1].Sequence : ceiling);
    }

    /// <summary>The highest sequence below which no event can still appear.</summary>
    private async Task<long> SafeCeilingAsync(NpgsqlConnection connection, CancellationToken cancellation)
    {
        long ceiling;
        string snapshot;
        await using (var command = new NpgsqlCommand($"SELECT coalesce(max(seq_id), 0), pg_current_snapshot()::text FROM {_schema}.mt_events", connection))
        await using (var reader = await command.ExecuteReaderAsync(cancellation))
        {
            await reader.ReadAsync(cancellation);
            ceiling = reader.GetInt64(0);
            snapshot = reader.GetString(1);
        }
        // Transactions in flight at the snapshot may hold lower sequence numbers; wait for each to commit or roll back.
        await using var pending = new NpgsqlCommand("SELECT count(*) FROM pg_snapshot_xip($1::pg_snapshot) AS x WHERE pg_xact_status(x) = 'in progress'", connection)
        {
            Parameters = { new() { Value = snapshot } },
        };
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while ((long)(await pending.ExecuteScalarAsync(cancellation))! > 0)
        {
            if (waited.Elapsed > TimeSpan.FromSeconds(30)) throw new TimeoutException("A transaction has held sequence numbers for 30 s; the lake waits for it to end.");
            await Task.Delay(20, cancellation);
        }
        return ceiling;
    }
}
