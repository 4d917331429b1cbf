using Marten;
using Marten.Services;
using Npgsql;
using NpgsqlTypes;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Core.Events;
using Pipeline.Core.Signals;
using Pipeline.Infra.Postgres;
using Microsoft.Extensions.Options;
using Pipeline.Infra.Kafka;

namespace Pipeline.Streams.Processing;

/// <summary>
/// Where the processors keep what makes them exact, beside the events and in the same transaction: the reading ids
/// processed (the store is the authority on duplicates, across restarts and instances), the seqs accepted per device,
/// each vehicle's last fix, the consumer offsets themselves, and the dead letters waiting for the relay.
/// </summary>
public sealed class ProcessingStore(IDocumentStore store, NpgsqlDataSource dataSource, IOptions<KafkaOptions> kafka)
{
    private readonly string _schema = store.Schema();

    /// <summary>Offsets and dead letters are kept per broker: an embedded broker restarts empty, with offsets from 0.</summary>
    public string Broker { get; } = kafka.Value.BrokerIdentity;

    private Task? _schemaReady;

    /// <summary>
    /// Creates or migrates the processors' tables once per process, under Marten's lock: a host applies them at start
    /// already, this covers a store composed without <see cref="ProcessingTables"/>.
    /// </summary>
    public Task EnsureSchemaAsync(CancellationToken cancellation) => LazyInitializer.EnsureInitialized(ref _schemaReady, () => store.ApplyAsync(ProcessingTables.For(_schema), cancellation));

    public string Schema => _schema;

    public ValueTask<NpgsqlConnection> OpenAsync(CancellationToken cancellation) => dataSource.OpenConnectionAsync(cancellation);

    /// <summary>The next offset to read for each partition, as committed with the events; absent partitions start at the beginning.</summary>
    public async Task<Dictionary<int, long>> OffsetsAsync(string group, string topic, CancellationToken cancellation)
    {
        await using var connection = await OpenAsync(cancellation);
        await using var command = new NpgsqlCommand($"SELECT partition, next_offset FROM {_schema}.consumer_offsets WHERE broker = $1 AND group_id = $2 AND topic = $3", connection)
        {
            Parameters = { new() { Value = Broker }, new() { Value = group }, new() { Value = topic } },
        };
        var offsets = new Dictionary<int, long>();
        await using var reader = await command.ExecuteReaderAsync(cancellation);
        while (await reader.ReadAsync(cancellation)) offsets[reader.GetInt32(0)] = reader.GetInt64(1);
        return offsets;
    }

    /// <summary>What the store knows of the batch's readings: ids already processed, accepted seqs, last fixes.</summary>
    public async Task<Dictionary<string, ReadingValidator.DeviceHistory>> HistoryAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyList<Checked> batch, IReadOnlyDictionary<string, Fix> knownFixes, CancellationToken cancellation)
    {
        var histories = new Dictionary<string, ReadingValidator.DeviceHistory>(StringComparer.Ordinal);
        var signed = batch.Where(c => c.SignedByRegisteredDevice && c.Reading is not null).ToList();
        foreach (var c in signed) histories.TryAdd(c.Reading!.Content.Device.ToLowerHex(), new ReadingValidator.DeviceHistory());
        if (signed.Count == 0) return histories;

        await using (var processed = new NpgsqlCommand($"SELECT device, reading_id FROM {_schema}.processed_readings WHERE reading_id = ANY($1)", connection, transaction))
        {
            processed.Parameters.Add(new NpgsqlParameter { Value = signed.Select(c => Hex.Decode(c.Reading!.Id)).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Bytea });
            await using var reader = await processed.ExecuteReaderAsync(cancellation);
            while (await reader.ReadAsync(cancellation)) histories[reader.GetString(0)].ProcessedIds.Add(Hex.Encode0x((byte[])reader[1]));
        }
        await using (var seqs = new NpgsqlCommand($"""
            SELECT p.device, p.seq, p.reading_id FROM {_schema}.processed_readings p
            JOIN unnest($1::text[], $2::bigint[]) AS b(device, seq) ON p.device = b.device AND p.seq = b.seq
            WHERE p.accepted
            """, connection, transaction))
        {
            seqs.Parameters.Add(new NpgsqlParameter { Value = signed.Select(c => c.Reading!.Content.Device.ToLowerHex()).ToArray() });
            seqs.Parameters.Add(new NpgsqlParameter { Value = signed.Select(c => c.Reading!.Content.Seq).ToArray() });
            await using var reader = await seqs.ExecuteReaderAsync(cancellation);
            while (await reader.ReadAsync(cancellation)) histories[reader.GetString(0)].AcceptedSeqs[reader.GetInt64(1)] = Hex.Encode0x((byte[])reader[2]);
        }
        var unknownFixes = histories.Keys.Where(d => !knownFixes.ContainsKey(d)).ToArray();
        foreach (var (device, fix) in knownFixes) if (histories.TryGetValue(device, out var history)) history.LastFix = fix;
        if (unknownFixes.Length > 0)
        {
            await using var fixes = new NpgsqlCommand($"SELECT device, latitude, longitude, device_time FROM {_schema}.device_positions WHERE device = ANY($1)", connection, transaction)
            {
                Parameters = { new() { Value = unknownFixes } },
            };
            await using var reader = await fixes.ExecuteReaderAsync(cancellation);
            while (await reader.ReadAsync(cancellation))
                histories[reader.GetString(0)].LastFix = new Fix(reader.GetDouble(1), reader.GetDouble(2), reader.GetFieldValue<DateTimeOffset>(3));
        }
        return histories;
    }

    /// <summary>
    /// Records a batch's outcomes and the offsets after it in one transaction. False when another instance recorded
    /// one of these readings meanwhile (a rebalance race); the caller then decides the batch again.
    /// </summary>
    public async Task<bool> RecordAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyList<Outcome> outcomes, IReadOnlyDictionary<string, Fix> fixes, string group, IReadOnlyDictionary<(string Topic, int Partition), long> nextOffsets, CancellationToken cancellation)
    {
        var stored = outcomes.Where(o => o.Verdict is Verdict.Accepted or Verdict.RejectedSigned).ToList();
        if (stored.Count > 0)
        {
            await using var insert = new NpgsqlCommand($"""
                INSERT INTO {_schema}.processed_readings (reading_id, device, seq, accepted)
                SELECT * FROM unnest($1::bytea[], $2::text[], $3::bigint[], $4::boolean[])
                ON CONFLICT DO NOTHING
                """, connection, transaction);
            insert.Parameters.Add(new NpgsqlParameter { Value = stored.Select(o => Hex.Decode(o.Reading!.Id)).ToArray() });
            insert.Parameters.Add(new NpgsqlParameter { Value = stored.Select(o => o.Device!).ToArray() });
            insert.Parameters.Add(new NpgsqlParameter { Value = stored.Select(o => o.Reading!.Content.Seq).ToArray() });
            insert.Parameters.Add(new NpgsqlParameter { Value = stored.Select(o => o.Verdict == Verdict.Accepted).ToArray() });
            if (await insert.ExecuteNonQueryAsync(cancellation) != stored.Count) return false;

            await using var session = store.LightweightSession(SessionOptions.ForTransaction(transaction));
            foreach (var outcome in stored)
            {
                var message = outcome.Message;
                var reading = outcome.Reading!;
                object data = outcome.Verdict == Verdict.Accepted
                    ? new ReadingAccepted(reading.Id, reading.Content.Seq, reading.Content.DeviceTime, message.ReceivedAt, outcome.Signals!, message.Partition, message.Offset)
                    : new ReadingRejected(reading.Id, reading.Content.Seq, outcome.Rejection!.Code.ToWire(), outcome.Rejection.Detail, message.ReceivedAt, message.Partition, message.Offset);
                var e = session.Events.BuildEvent(data);
                // The event id derives from the reading id: the store's unique index refuses a second copy whatever happens above.
                e.Id = new Guid(Hex.Decode(reading.Id).AsSpan(0, 16));
                session.Events.Append(outcome.Device!, e);
            }
            await session.SaveChangesAsync(cancellation);
        }

        var dead = outcomes.Where(o => o.Verdict is Verdict.RejectedSigned or Verdict.RejectedUnsigned).ToList();
        if (dead.Count > 0)
        {
            await using var letters = new NpgsqlCommand($"""
                INSERT INTO {_schema}.dead_letters (broker, source_topic, source_partition, source_offset, device, reason, detail, value, received_at)
                SELECT $9, * FROM unnest($1::text[], $2::int[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::bytea[], $8::timestamptz[])
                ON CONFLICT DO NOTHING
                """, connection, transaction);
            letters.Parameters.Add(new NpgsqlParameter { Value = dead.Select(o => o.Message.Topic).ToArray() });
            letters.Parameters.Add(new NpgsqlParameter { Value = dead.Select(o => o.Message.Partition).ToArray() });
            letters.Parameters.Add(new NpgsqlParameter { Value = dead.Select(o => o.Message.Offset).ToArray() });
            // The key comes from the topic as any producer wrote it: escaped, so a dead letter is always storable.
            letters.Parameters.Add(new NpgsqlParameter { Value = dead.Select(o => o.Device ?? (o.Message.Key is { } key ? SafeText.Escape(key) : null)).ToArray(), NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Text });
            letters.Parameters.Add(new NpgsqlParameter { Value = dead.Select(o => o.Rejection!.Code.ToWire()).ToArray() });
            letters.Parameters.Add(new NpgsqlParameter { Value = dead.Select(o => o.Rejection!.Detail).ToArray() });
            letters.Parameters.Add(new NpgsqlParameter { Value = dead.Select(o => o.Message.Value).ToArray() });
            letters.Parameters.Add(new NpgsqlParameter { Value = dead.Select(o => o.Message.ReceivedAt).ToArray() });
            letters.Parameters.Add(new NpgsqlParameter { Value = Broker });
            await letters.ExecuteNonQueryAsync(cancellation);
        }

        if (fixes.Count > 0)
        {
            await using var positions = new NpgsqlCommand($"""
                INSERT INTO {_schema}.device_positions (device, latitude, longitude, device_time)
                SELECT * FROM unnest($1::text[], $2::float8[], $3::float8[], $4::timestamptz[])
                ON CONFLICT (device) DO UPDATE SET latitude = EXCLUDED.latitude, longitude = EXCLUDED.longitude, device_time = EXCLUDED.device_time
                    WHERE EXCLUDED.device_time >= {_schema}.device_positions.device_time
                """, connection, transaction);
            positions.Parameters.Add(new NpgsqlParameter { Value = fixes.Keys.ToArray() });
            positions.Parameters.Add(new NpgsqlParameter { Value = fixes.Values.Select(f => f.Latitude).ToArray() });
            positions.Parameters.Add(new NpgsqlParameter { Value = fixes.Values.Select(f => f.Longitude).ToArray() });
            positions.Parameters.Add(new NpgsqlParameter { Value = fixes.Values.Select(f => f.DeviceTime).ToArray() });
            await positions.ExecuteNonQueryAsync(cancellation);
        }

        await using var offsets = new NpgsqlCommand($"""
            INSERT INTO {_schema}.consumer_offsets (broker, group_id, topic, partition, next_offset)
            SELECT $5, $1, * FROM unnest($2::text[], $3::int[], $4::bigint[])
            ON CONFLICT (broker, group_id, topic, partition) DO UPDATE SET next_offset = GREATEST({_schema}.consumer_offsets.next_offset, EXCLUDED.next_offset)
            """, connection, transaction);
        offsets.Parameters.Add(new NpgsqlParameter { Value = group });
        offsets.Parameters.Add(new NpgsqlParameter { Value = nextOffsets.Keys.Select(k => k.Topic).ToArray() });
        offsets.Parameters.Add(new NpgsqlParameter { Value = nextOffsets.Keys.Select(k => k.Partition).ToArray() });
        offsets.Parameters.Add(new NpgsqlParameter { Value = nextOffsets.Values.ToArray() });
        offsets.Parameters.Add(new NpgsqlParameter { Value = Broker });
        await offsets.ExecuteNonQueryAsync(cancellation);
        return true;
    }
}
