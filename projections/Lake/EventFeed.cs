using System.Text.Json;
using System.Text.Json.Serialization;
using Npgsql;
using NpgsqlTypes;
using Pipeline.Core.Events;

namespace Pipeline.Projections.Lake;

/// <summary>An event the lake cares about, with its global sequence in the store.</summary>
public sealed record FeedEvent(long Sequence, string Device, object Data);

/// <summary>
/// Reads reading events in global sequence order, never past a point where a gap could still fill. Sequence numbers
/// are taken inside the appending transactions and can commit out of order; the feed reads up to the highest sequence
/// visible in a snapshot only once every transaction that had taken a sequence number by then has ended, so each range
/// it returns is final: nothing can later appear below its end. Only those transactions are waited for — not the rest
/// of the server's (another database's report or migration does not hold the lake back).
/// </summary>
public sealed class EventFeed(NpgsqlDataSource dataSource, string schema)
{
    private static readonly string[] Types = [EventNames.All[typeof(ReadingAccepted)], EventNames.All[typeof(ReadingRejected)]];

    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { Converters = { new JsonStringEnumConverter() } };

    private readonly string _schema = schema;

    /// <summary>What the feed's connections are named, so an operator (or a test) sees in pg_stat_activity which session the lake reads and waits with.</summary>
    public static string ApplicationName(string schema) => $"depin-lake-feed:{schema}";

    /// <summary>The events after <paramref name="after"/> up to a safe ceiling (at most <paramref name="max"/>), and the sequence the caller may checkpoint.</summary>
    public async Task<(IReadOnlyList<FeedEvent> Events, long Through)> ReadAsync(long after, int max, long? until, CancellationToken cancellation)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellation);
        var ceiling = await SafeCeilingAsync(connection, cancellation);
        if (until is { } limit) ceiling = Math.Min(ceiling, limit);
        if (ceiling <= after) return ([], after);

        await using var command = new NpgsqlCommand($"""
            SELECT seq_id, stream_id, type, data FROM {_schema}.mt_events
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
            // jsonb's binary form is its UTF-8 text after a version byte, which Npgsql drops: parsed as PostgreSQL sends
            // it, with no text cast or bytea copy on the server (issue 16) and no UTF-16 string here.
            var json = reader.GetFieldValue<byte[]>(3);
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
        // nextval() locks the sequence until its transaction ends, and this sequence numbers the events (one value at a
        // time, no cache): a transaction holding a number below the ceiling that has not committed still holds the lock.
        // pg_locks also shows the fast-path locks; relation ids repeat across databases, hence the database filter.
        var holders = $"""
            FROM pg_locks WHERE locktype = 'relation' AND granted
              AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
              AND relation = '{_schema}.mt_events_sequence'::regclass
            """;
        long ceiling;
        string[] pending;
        await using (var command = new NpgsqlCommand($"SELECT (SELECT coalesce(max(seq_id), 0) FROM {_schema}.mt_events), array(SELECT DISTINCT virtualtransaction {holders})", connection))
        await using (var reader = await command.ExecuteReaderAsync(cancellation))
        {
            await reader.ReadAsync(cancellation);
            ceiling = reader.GetInt64(0);
            pending = reader.GetFieldValue<string[]>(1);
        }
        if (pending.Length == 0) return ceiling;
        // Those transactions were in flight when the ceiling was read, or began after it (and then took higher numbers):
        // once each has committed or rolled back, nothing can still appear at or below the ceiling.
        await using var waiting = new NpgsqlCommand($"SELECT count(*) {holders} AND virtualtransaction = ANY($1)", connection) { Parameters = { new() { Value = pending } } };
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while ((long)(await waiting.ExecuteScalarAsync(cancellation))! > 0)
        {
            if (waited.Elapsed > TimeSpan.FromSeconds(30)) throw new TimeoutException("A transaction has held sequence numbers for 30 s; the lake waits for it to end.");
            await Task.Delay(20, cancellation);
        }
        return ceiling;
    }
}
