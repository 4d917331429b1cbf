using System.Runtime.InteropServices;
using Marten;
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
/// Where the processors keep what makes them exact, beside the events and in the same transaction: the seqs accepted
/// per device, each vehicle's last fix, the consumer offsets themselves, and the dead letters waiting for the relay.
/// Which readings were processed, the events say: each event's id derives from its reading's id, and mt_events' unique
/// index on it is the authority on duplicates, across restarts and instances.
/// </summary>
public sealed class ProcessingStore(IDocumentStore store, NpgsqlDataSource dataSource, IOptions<KafkaOptions> kafka, TimeProvider clock)
{
    private readonly string _schema = store.Schema();
    private readonly Lazy<(string Type, string DotNetType)> _acceptedNames = new(() => EventNamesOf(store, new ReadingAccepted("", 0, default, default, new Dictionary<string, double>(), 0, 0)));
    private readonly Lazy<(string Type, string DotNetType)> _rejectedNames = new(() => EventNamesOf(store, new ReadingRejected("", 0, "", "", default, 0, 0)));

    /// <summary>Offsets and dead letters are kept per broker: an embedded broker restarts empty, with offsets from 0.</summary>
    public string Broker { get; } = kafka.Value.BrokerIdentity;

    private ReadingEventBodies? _spareBodies;

    private Task? _schemaReady;

    /// <summary>
    /// Creates or migrates the processors' tables once per process, under Marten's lock: a host applies them at start
    /// already, this covers a store composed without <see cref="ProcessingTables"/>. An attempt that failed (PostgreSQL
    /// restarting) is not kept, so the caller's retry applies them again.
    /// </summary>
    public Task EnsureSchemaAsync(CancellationToken cancellation)
    {
        var ready = _schemaReady;
        if (ready is null || ready.IsFaulted || ready.IsCanceled) _schemaReady = ready = PrepareAsync(cancellation);
        return ready;
    }

    private async Task PrepareAsync(CancellationToken cancellation)
    {
        await store.ApplyAsync(ProcessingTables.For(_schema), cancellation);
        await CarryOverProcessedReadingsAsync(cancellation);
        AppendsSkipStreamKeyCheck = await MaySetReplicationRoleAsync(cancellation);
    }

    /// <summary>
    /// Whether the events' append runs without mt_events' foreign key check on its stream (<see cref="AppendRowsAsync"/>):
    /// when this role may set session_replication_role (a superuser, or granted SET ON that parameter). Known once the
    /// schema is ready.
    /// </summary>
    public bool AppendsSkipStreamKeyCheck { get; private set; }

    private async Task<bool> MaySetReplicationRoleAsync(CancellationToken cancellation)
    {
        await using var connection = await OpenAsync(cancellation);
        await using var command = new NpgsqlCommand("SELECT has_parameter_privilege('session_replication_role', 'SET')", connection);
        try
        {
            return (bool)(await command.ExecuteScalarAsync(cancellation))!;
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedFunction)
        {
            // Before PostgreSQL 15 only a superuser may, and a superuser is rarely what an application connects as.
            return false;
        }
    }

    /// <summary>
    /// A database from before issue 16 keeps every processed reading's id in processed_readings, beside the events that
    /// already say so: its accepted seqs move to accepted_seqs and the table goes, once, whichever process comes first.
    /// </summary>
    private async Task CarryOverProcessedReadingsAsync(CancellationToken cancellation)
    {
        await using var connection = await OpenAsync(cancellation);
        await using var command = new NpgsqlCommand($"""
            DO $$
            BEGIN
                PERFORM pg_advisory_xact_lock(hashtext('depin:processed_readings:{_schema}'));
                IF to_regclass('{_schema}.processed_readings') IS NOT NULL THEN
                    INSERT INTO {_schema}.accepted_seqs (device, seq, reading_id)
                        SELECT device, seq, reading_id FROM {_schema}.processed_readings WHERE accepted ON CONFLICT DO NOTHING;
                    DROP TABLE {_schema}.processed_readings;
                END IF;
            END $$
            """, connection);
        await command.ExecuteNonQueryAsync(cancellation);
    }

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

    /// <summary>Moves a partition's offset on (never back) outside a batch: past messages the broker no longer holds.</summary>
    public async Task AdvanceOffsetAsync(string group, string topic, int partition, long next, CancellationToken cancellation)
    {
        await using var connection = await OpenAsync(cancellation);
        await using var command = new NpgsqlCommand($"""
            INSERT INTO {_schema}.consumer_offsets (broker, group_id, topic, partition, next_offset) VALUES ($1, $2, $3, $4, $5)
            ON CONFLICT (broker, group_id, topic, partition) DO UPDATE SET next_offset = GREATEST({_schema}.consumer_offsets.next_offset, EXCLUDED.next_offset)
            """, connection)
        {
            Parameters = { new() { Value = Broker }, new() { Value = group }, new() { Value = topic }, new() { Value = partition }, new() { Value = next } },
        };
        await command.ExecuteNonQueryAsync(cancellation);
    }

    /// <summary>
    /// What the store knows of the batch's devices: their last fixes and, when <paramref name="withReadings"/>, which of
    /// the batch's readings it processed already (their events exist) and which of its seqs it accepted.
    /// </summary>
    public async Task<Dictionary<EthAddress, ReadingValidator.DeviceHistory>> HistoryAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyList<Checked> batch, IReadOnlyDictionary<string, Fix> knownFixes, bool withReadings, CancellationToken cancellation)
    {
        var histories = new Dictionary<EthAddress, ReadingValidator.DeviceHistory>();
        var signed = new List<SignedReading>(batch.Count);
        var perDevice = new Dictionary<EthAddress, int>();
        foreach (var c in batch)
        {
            if (!c.SignedByRegisteredDevice || c.Reading is not { } reading) continue;
            signed.Add(reading);
            CollectionsMarshal.GetValueRefOrAddDefault(perDevice, reading.Content.Device, out _)++;
        }
        if (signed.Count == 0) return histories;
        // The stream id's hex string, once per device and batch.
        foreach (var (device, readings) in perDevice) histories[device] = new ReadingValidator.DeviceHistory(device.ToLowerHex(), readings);

        if (withReadings) await ReadingsAsync(connection, transaction, signed, histories, cancellation);
        var unknownFixes = new Dictionary<string, ReadingValidator.DeviceHistory>(StringComparer.Ordinal);
        foreach (var history in histories.Values)
        {
            if (knownFixes.TryGetValue(history.Device!, out var fix)) history.LastFix = fix;
            else unknownFixes[history.Device!] = history;
        }
        if (unknownFixes.Count > 0)
        {
            await using var fixes = new NpgsqlCommand($"SELECT device, latitude, longitude, device_time FROM {_schema}.device_positions WHERE device = ANY($1)", connection, transaction)
            {
                Parameters = { new() { Value = unknownFixes.Keys.ToArray() } },
            };
            await using var reader = await fixes.ExecuteReaderAsync(cancellation);
            while (await reader.ReadAsync(cancellation))
                unknownFixes[reader.GetString(0)].LastFix = new Fix(reader.GetDouble(1), reader.GetDouble(2), reader.GetFieldValue<DateTimeOffset>(3));
        }
        return histories;
    }

    private async Task ReadingsAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, List<SignedReading> signed, Dictionary<EthAddress, ReadingValidator.DeviceHistory> histories, CancellationToken cancellation)
    {
        var byEventId = new Dictionary<Guid, SignedReading>(signed.Count);
        foreach (var reading in signed) byEventId.TryAdd(reading.ReadingId.ToEventId(), reading);
        await using (var processed = new NpgsqlCommand($"SELECT id FROM {_schema}.mt_events WHERE id = ANY($1)", connection, transaction))
        {
            processed.Parameters.Add(new NpgsqlParameter { Value = byEventId.Keys.ToArray() });
            await using var reader = await processed.ExecuteReaderAsync(cancellation);
            while (await reader.ReadAsync(cancellation))
            {
                var reading = byEventId[reader.GetGuid(0)];
                histories[reading.Content.Device].ProcessedIds.Add(reading.ReadingId);
            }
        }
        var devices = new string[signed.Count];
        var seqs = new long[signed.Count];
        for (var i = 0; i < signed.Count; i++) (devices[i], seqs[i]) = (histories[signed[i].Content.Device].Device!, signed[i].Content.Seq);
        await using (var accepted = new NpgsqlCommand($"""
            SELECT a.device, a.seq, a.reading_id FROM {_schema}.accepted_seqs a
            JOIN unnest($1::text[], $2::bigint[]) AS b(device, seq) ON a.device = b.device AND a.seq = b.seq
            """, connection, transaction))
        {
            accepted.Parameters.Add(new NpgsqlParameter { Value = devices });
            accepted.Parameters.Add(new NpgsqlParameter { Value = seqs });
            await using var reader = await accepted.ExecuteReaderAsync(cancellation);
            while (await reader.ReadAsync(cancellation))
                histories[EthAddress.Parse(reader.GetString(0))].AcceptedSeqs[reader.GetInt64(1)] = new ReadingId((byte[])reader[2]);
        }
    }

    /// <summary>
    /// Records a batch's outcomes and the offsets after it in one transaction. False when the store holds one of these
    /// readings (a replay, or another instance recorded it meanwhile in a rebalance race) or another reading for one of
    /// their seqs; the caller then rolls back and decides the batch against what the store holds.
    /// </summary>
    public async Task<bool> RecordAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyList<Outcome> outcomes, IReadOnlyDictionary<string, Fix> fixes, string group, IReadOnlyDictionary<(string Topic, int Partition), long> nextOffsets, CancellationToken cancellation)
    {
        var stored = new List<Outcome>(outcomes.Count);
        var accepted = new List<Outcome>(outcomes.Count);
        foreach (var outcome in outcomes)
        {
            if (outcome.Verdict is Verdict.Accepted or Verdict.RejectedSigned) stored.Add(outcome);
            if (outcome.Verdict == Verdict.Accepted) accepted.Add(outcome);
        }
        if (stored.Count > 0)
        {
            if (accepted.Count > 0)
            {
                var (devices, seqNumbers, readingIds) = (new string[accepted.Count], new long[accepted.Count], new byte[accepted.Count][]);
                for (var i = 0; i < accepted.Count; i++)
                    (devices[i], seqNumbers[i], readingIds[i]) = (accepted[i].Device!, accepted[i].Reading!.Content.Seq, accepted[i].Reading!.ReadingId.ToArray());
                await using var seqs = new NpgsqlCommand($"""
                    INSERT INTO {_schema}.accepted_seqs (device, seq, reading_id)
                    SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[])
                    """, connection, transaction);
                seqs.Parameters.Add(new NpgsqlParameter { Value = devices });
                seqs.Parameters.Add(new NpgsqlParameter { Value = seqNumbers });
                seqs.Parameters.Add(new NpgsqlParameter { Value = readingIds });
                if (!await InsertsAllAsync(seqs.ExecuteNonQueryAsync(cancellation), AcceptedSeqsKey)) return false;
            }
            if (!await AppendAsync(connection, transaction, stored, cancellation)) return false;
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

    /// <summary>
    /// Appends the batch's events to their devices' streams in one set-based statement, in Marten's own tables and
    /// format (the wire name, the JSON Marten's serializer writes (<see cref="ReadingEventBodies"/>) and .NET type name, the stream's version moved on, one global sequence
    /// number per event in batch order, taken inside this transaction as the lake's feed expects). Marten's quick append
    /// calls a PL/pgSQL function per stream that inserts event by event, about half of a batch's recording time (README,
    /// Performance). Reading events feed no inline projection, so none is skipped. A stream that is missing or archived
    /// gets no version and PostgreSQL refuses the row (23502), as it refuses anything else a message carries. False when
    /// an event of one of these readings exists already: nothing of it may then be committed.
    /// </summary>
    private async Task<bool> AppendAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, List<Outcome> stored, CancellationToken cancellation)
    {
        var count = stored.Count;
        var ids = new Guid[count];
        var streams = new string[count];
        var positions = new int[count];
        var types = new string[count];
        var dotnetTypes = new string[count];
        var perStream = new Dictionary<string, int>(StringComparer.Ordinal);
        var bodies = Interlocked.Exchange(ref _spareBodies, null) ?? new ReadingEventBodies();
        try
        {
            bodies.Clear();
            for (var i = 0; i < count; i++)
            {
                var outcome = stored[i];
                ids[i] = outcome.Reading!.ReadingId.ToEventId();
                streams[i] = outcome.Device!;
                ref var position = ref CollectionsMarshal.GetValueRefOrAddDefault(perStream, outcome.Device!, out _);
                positions[i] = ++position;
                (types[i], dotnetTypes[i]) = outcome.Verdict == Verdict.Accepted ? _acceptedNames.Value : _rejectedNames.Value;
                bodies.Add(outcome);
            }
            return await AppendRowsAsync(connection, transaction, ids, streams, positions, types, dotnetTypes, bodies.ToArray(), cancellation);
        }
        finally
        {
            // The next batch reuses the buffer; a concurrent one (another processor in this host) makes its own.
            _spareBodies = bodies;
        }
    }

    /// <summary>
    /// The append as one statement. mt_events' foreign key to mt_streams would check each event's stream with a query of
    /// its own (a trigger per row: about 4 µs of PostgreSQL's CPU per reading, a fifth of its share — README,
    /// Performance); the statement itself already proves it, as it takes each event's version from its stream's row,
    /// which it updates and so holds locked to the commit. Where the role may, the check is left out for this statement
    /// alone (session_replication_role, as pg_restore leaves it out): not-null, check and unique constraints still hold.
    /// The statement is planned without its parameters' values (a generic plan): a custom plan copies every array into
    /// the plan, bodies included, only to choose the plan the generic one chooses too, over 23 streams as over 200,000
    /// (README, Performance).
    /// </summary>
    private async Task<bool> AppendRowsAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, Guid[] ids, string[] streams, int[] positions, string[] types, string[] dotnetTypes, ReadOnlyMemory<byte>[] bodies, CancellationToken cancellation)
    {
        var append = new NpgsqlBatchCommand($"""
            WITH events AS (
                SELECT * FROM unnest($1::uuid[], $2::varchar[], $3::int[], $4::varchar[], $5::varchar[], $6::jsonb[])
                    WITH ORDINALITY AS e(id, stream_id, position, type, dotnet_type, data, ordinal)),
            counts AS (SELECT stream_id, count(*) AS appended FROM events GROUP BY stream_id),
            streams AS (
                UPDATE {_schema}.mt_streams s SET version = s.version + c.appended, timestamp = now()
                FROM counts c WHERE s.id = c.stream_id AND NOT s.is_archived
                RETURNING s.id, s.version - c.appended AS before)
            INSERT INTO {_schema}.mt_events (seq_id, id, stream_id, version, data, type, timestamp, mt_dotnet_type, is_archived)
            SELECT nextval('{_schema}.mt_events_sequence'), id, stream_id, before + position, data, type, $7, dotnet_type, false
            FROM (SELECT e.*, s.before FROM events e LEFT JOIN streams s ON s.id = e.stream_id ORDER BY e.ordinal) ordered
            """);
        append.Parameters.Add(new NpgsqlParameter { Value = ids });
        append.Parameters.Add(new NpgsqlParameter { Value = streams });
        append.Parameters.Add(new NpgsqlParameter { Value = positions });
        append.Parameters.Add(new NpgsqlParameter { Value = types });
        append.Parameters.Add(new NpgsqlParameter { Value = dotnetTypes });
        append.Parameters.Add(new NpgsqlParameter { Value = bodies, NpgsqlDbType = NpgsqlDbType.Array | NpgsqlDbType.Jsonb });
        append.Parameters.Add(new NpgsqlParameter { Value = clock.GetUtcNow() });
        await using var batch = new NpgsqlBatch(connection, transaction);
        batch.BatchCommands.Add(new NpgsqlBatchCommand("SET LOCAL plan_cache_mode = force_generic_plan"));
        if (AppendsSkipStreamKeyCheck) batch.BatchCommands.Add(new NpgsqlBatchCommand("SET LOCAL session_replication_role = replica"));
        batch.BatchCommands.Add(append);
        if (AppendsSkipStreamKeyCheck) batch.BatchCommands.Add(new NpgsqlBatchCommand("SET LOCAL session_replication_role = origin"));
        batch.BatchCommands.Add(new NpgsqlBatchCommand("SET LOCAL plan_cache_mode = auto"));
        return await InsertsAllAsync(batch.ExecuteNonQueryAsync(cancellation), EventIdKey);
    }

    /// <summary>Marten's unique index on the event id (<see cref="StoreOptions"/>' EnableUniqueIndexOnEventId), the authority on processed readings.</summary>
    private const string EventIdKey = "idx_mt_events_event_id";

    private const string AcceptedSeqsKey = "accepted_seqs_pkey";

    /// <summary>
    /// Awaits an insert that either stores every row or meets a row the store holds under <paramref name="key"/>: then false,
    /// and the transaction is aborted — the caller rolls it back and decides the batch against the store. A plain insert,
    /// not ON CONFLICT DO NOTHING: that probes the key before each row and writes a WAL record more per row to confirm it,
    /// a cost every batch paid for the rare replay.
    /// </summary>
    private static async Task<bool> InsertsAllAsync(Task<int> insert, string key)
    {
        try
        {
            await insert;
            return true;
        }
        catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation && e.ConstraintName == key)
        {
            return false;
        }
    }

    /// <summary>The names Marten stores an event under: its wire name and its .NET type name.</summary>
    private static (string Type, string DotNetType) EventNamesOf(IDocumentStore store, object sample)
    {
        using var session = store.LightweightSession();
        var e = session.Events.BuildEvent(sample);
        return (e.EventTypeName, e.DotNetTypeName);
    }
}
