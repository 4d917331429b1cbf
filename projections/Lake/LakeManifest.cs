using Marten;
using Npgsql;
using Pipeline.Infra.Postgres;

namespace Pipeline.Projections.Lake;

/// <summary>One Parquet file of the lake: where it lies (relative to the lake folder), what it holds, its digest.</summary>
public sealed record LakeFile(string Path, string Dataset, DateOnly Date, long FirstSequence, long LastSequence, int Rows, string Sha256);

/// <summary>The files the lake was made of at a checkpoint, or why they cannot be had: ahead of the lake, or expired.</summary>
public sealed record LakeFileSet(long Checkpoint, IReadOnlyList<LakeFile> Files, long LakeCheckpoint, long SnapshotsFrom)
{
    public bool Ahead => Checkpoint > LakeCheckpoint;
    public bool Expired => Checkpoint < SnapshotsFrom;
}

/// <summary>
/// The lake's record in PostgreSQL: which files make it up and how far into the event log it has projected. Files and
/// checkpoint change together in one transaction, fenced on the checkpoint, so two projectors can never both extend the
/// same lake, and the views only ever see committed files.
/// </summary>
public sealed class LakeManifest(IDocumentStore store, NpgsqlDataSource dataSource, string lake)
{
    private readonly string _schema = store.Schema();

    /// <summary>Creates or migrates the manifest's tables (under Marten's lock) and the lake's checkpoint row.</summary>
    public async Task EnsureSchemaAsync(CancellationToken cancellation)
    {
        await store.ApplyAsync(LakeTables.For(_schema), cancellation);
        await using var connection = await OpenAsync(cancellation);
        await using var checkpoint = new NpgsqlCommand($"INSERT INTO {_schema}.lake_checkpoints (lake, last_seq) VALUES ($1, 0) ON CONFLICT DO NOTHING", connection)
        {
            Parameters = { new() { Value = lake } },
        };
        await checkpoint.ExecuteNonQueryAsync(cancellation);
    }

    public ValueTask<NpgsqlConnection> OpenAsync(CancellationToken cancellation) => dataSource.OpenConnectionAsync(cancellation);

    public async Task<long> CheckpointAsync(CancellationToken cancellation)
    {
        await using var connection = await OpenAsync(cancellation);
        await using var command = new NpgsqlCommand($"SELECT last_seq FROM {_schema}.lake_checkpoints WHERE lake = $1", connection) { Parameters = { new() { Value = lake } } };
        return await command.ExecuteScalarAsync(cancellation) is long seq ? seq : 0;
    }

    /// <summary>The files the lake is made of now (not those kept for snapshots).</summary>
    public async Task<List<LakeFile>> FilesAsync(CancellationToken cancellation)
    {
        await using var connection = await OpenAsync(cancellation);
        return await FilesAsync(connection, null, "retired_seq IS NULL", cancellation);
    }

    /// <summary>
    /// The files the lake was made of at <paramref name="checkpoint"/>: added by a commit at or before it and not yet
    /// replaced then. Read in one statement with the lake's checkpoint and the oldest snapshot it still has the files of.
    /// </summary>
    public async Task<LakeFileSet> FilesAtAsync(long checkpoint, CancellationToken cancellation)
    {
        await using var connection = await OpenAsync(cancellation);
        await using var transaction = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellation);
        await using var command = new NpgsqlCommand($"SELECT last_seq, snapshots_from FROM {_schema}.lake_checkpoints WHERE lake = $1", connection, transaction) { Parameters = { new() { Value = lake } } };
        long current = 0, from = 0;
        await using (var reader = await command.ExecuteReaderAsync(cancellation))
            if (await reader.ReadAsync(cancellation)) (current, from) = (reader.GetInt64(0), reader.GetInt64(1));
        var files = await FilesAsync(connection, transaction, $"live_from <= {checkpoint} AND (retired_seq IS NULL OR retired_seq > {checkpoint})", cancellation);
        await transaction.CommitAsync(cancellation);
        return new LakeFileSet(checkpoint, files, current, from);
    }

    private async Task<List<LakeFile>> FilesAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, string condition, CancellationToken cancellation)
    {
        await using var command = new NpgsqlCommand($"SELECT path, dataset, date, first_seq, last_seq, rows, sha256 FROM {_schema}.lake_files WHERE lake = $1 AND {condition} ORDER BY dataset, date, first_seq", connection, transaction)
        {
            Parameters = { new() { Value = lake } },
        };
        var files = new List<LakeFile>();
        await using var reader = await command.ExecuteReaderAsync(cancellation);
        while (await reader.ReadAsync(cancellation))
            files.Add(new LakeFile(reader.GetString(0), reader.GetString(1), reader.GetFieldValue<DateOnly>(2), reader.GetInt64(3), reader.GetInt64(4), reader.GetInt32(5), reader.GetString(6)));
        return files;
    }

    /// <summary>
    /// Adds and removes files and moves the checkpoint from <paramref name="expected"/> to <paramref name="through"/>,
    /// atomically; false when the checkpoint is no longer <paramref name="expected"/> (another projector got there).
    /// <paramref name="publish"/> puts the added files in place once the fence holds and before anything is recorded, so
    /// a committed file is always on disk, and a writer that lost the lake publishes nothing. The checkpoint's row stays
    /// locked until the commit: no other commit, nor <see cref="WhileLockedAsync"/>, can come in between.
    /// </summary>
    public async Task<bool> CommitAsync(long expected, long through, IReadOnlyList<LakeFile> added, IReadOnlyList<LakeFile> removed, Action publish, CancellationToken cancellation)
    {
        await using var connection = await OpenAsync(cancellation);
        await using var transaction = await connection.BeginTransactionAsync(cancellation);
        await using (var checkpoint = new NpgsqlCommand($"UPDATE {_schema}.lake_checkpoints SET last_seq = $3 WHERE lake = $1 AND last_seq = $2", connection, transaction))
        {
            checkpoint.Parameters.Add(new NpgsqlParameter { Value = lake });
            checkpoint.Parameters.Add(new NpgsqlParameter { Value = expected });
            checkpoint.Parameters.Add(new NpgsqlParameter { Value = through });
            if (await checkpoint.ExecuteNonQueryAsync(cancellation) != 1) return false;
        }
        publish();
        // Replaced, not forgotten: snapshots up to this checkpoint still read them until retention ends (ExpireAsync).
        if (removed.Count > 0) await RetireAsync(connection, transaction, removed, through, cancellation);
        if (added.Count > 0) await InsertAsync(connection, transaction, added, through, cancellation);
        await transaction.CommitAsync(cancellation);
        return true;
    }

    /// <summary>
    /// Swaps <paramref name="replaced"/> for <paramref name="merged"/> at the lake's checkpoint as it is now, whatever
    /// rounds committed since the files were listed (compaction runs beside the rounds); false, with nothing changed,
    /// when one of them is no longer live (replaced meanwhile by another leader's compaction). The checkpoint's row is
    /// locked, so the swap lands between two commits, and <paramref name="publish"/> puts the merged file in place under
    /// that lock before it is recorded, as <see cref="CommitAsync"/> does.
    /// </summary>
    public async Task<bool> ReplaceAsync(LakeFile merged, IReadOnlyList<LakeFile> replaced, Action publish, CancellationToken cancellation)
    {
        await using var connection = await OpenAsync(cancellation);
        await using var transaction = await connection.BeginTransactionAsync(cancellation);
        await using var checkpoint = new NpgsqlCommand($"SELECT last_seq FROM {_schema}.lake_checkpoints WHERE lake = $1 FOR UPDATE", connection, transaction) { Parameters = { new() { Value = lake } } };
        var current = (long)(await checkpoint.ExecuteScalarAsync(cancellation))!;
        if (await RetireAsync(connection, transaction, replaced, current, cancellation) != replaced.Count) return false;
        publish();
        await InsertAsync(connection, transaction, [merged], current, cancellation);
        await transaction.CommitAsync(cancellation);
        return true;
    }

    /// <summary>Marks live files as replaced at <paramref name="checkpoint"/>; returns how many were still live.</summary>
    private async Task<int> RetireAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyList<LakeFile> files, long checkpoint, CancellationToken cancellation)
    {
        await using var retire = new NpgsqlCommand($"UPDATE {_schema}.lake_files SET retired_seq = $3, retired_at = now() WHERE lake = $1 AND path = ANY($2) AND retired_seq IS NULL", connection, transaction);
        retire.Parameters.Add(new NpgsqlParameter { Value = lake });
        retire.Parameters.Add(new NpgsqlParameter { Value = files.Select(f => f.Path).ToArray() });
        retire.Parameters.Add(new NpgsqlParameter { Value = checkpoint });
        return await retire.ExecuteNonQueryAsync(cancellation);
    }

    /// <summary>Records files as part of the lake from <paramref name="liveFrom"/> on.</summary>
    private async Task InsertAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyList<LakeFile> files, long liveFrom, CancellationToken cancellation)
    {
        await using var insert = new NpgsqlCommand($"""
            INSERT INTO {_schema}.lake_files (lake, path, dataset, date, first_seq, last_seq, rows, sha256, live_from)
            SELECT $1, *, $9 FROM unnest($2::text[], $3::text[], $4::date[], $5::bigint[], $6::bigint[], $7::int[], $8::text[])
            """, connection, transaction);
        insert.Parameters.Add(new NpgsqlParameter { Value = lake });
        insert.Parameters.Add(new NpgsqlParameter { Value = files.Select(f => f.Path).ToArray() });
        insert.Parameters.Add(new NpgsqlParameter { Value = files.Select(f => f.Dataset).ToArray() });
        insert.Parameters.Add(new NpgsqlParameter { Value = files.Select(f => f.Date).ToArray() });
        insert.Parameters.Add(new NpgsqlParameter { Value = files.Select(f => f.FirstSequence).ToArray() });
        insert.Parameters.Add(new NpgsqlParameter { Value = files.Select(f => f.LastSequence).ToArray() });
        insert.Parameters.Add(new NpgsqlParameter { Value = files.Select(f => f.Rows).ToArray() });
        insert.Parameters.Add(new NpgsqlParameter { Value = files.Select(f => f.Sha256).ToArray() });
        insert.Parameters.Add(new NpgsqlParameter { Value = liveFrom });
        await insert.ExecuteNonQueryAsync(cancellation);
    }

    /// <summary>
    /// Forgets the files replaced longer than <paramref name="retention"/> ago and moves the oldest snapshot past the
    /// checkpoint that replaced them, in one transaction; returns them, for the caller to delete from disk afterwards
    /// (should it die first, recovery deletes files the manifest does not name).
    /// </summary>
    public async Task<IReadOnlyList<LakeFile>> ExpireAsync(TimeSpan retention, CancellationToken cancellation)
    {
        await using var connection = await OpenAsync(cancellation);
        await using var transaction = await connection.BeginTransactionAsync(cancellation);
        var expired = await FilesAsync(connection, transaction, $"retired_at <= now() - make_interval(secs => {retention.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture)})", cancellation);
        if (expired.Count == 0) return expired;
        await using var batch = new NpgsqlBatch(connection, transaction)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand($"""
                    UPDATE {_schema}.lake_checkpoints SET snapshots_from = greatest(snapshots_from,
                        (SELECT max(retired_seq) FROM {_schema}.lake_files WHERE lake = $1 AND path = ANY($2))) WHERE lake = $1
                    """) { Parameters = { new() { Value = lake }, new() { Value = expired.Select(f => f.Path).ToArray() } } },
                new NpgsqlBatchCommand($"DELETE FROM {_schema}.lake_files WHERE lake = $1 AND path = ANY($2)") { Parameters = { new() { Value = lake }, new() { Value = expired.Select(f => f.Path).ToArray() } } },
            },
        };
        await batch.ExecuteNonQueryAsync(cancellation);
        await transaction.CommitAsync(cancellation);
        return expired;
    }

    /// <summary>
    /// Runs <paramref name="work"/> with every file the manifest names — live, or kept for snapshots — while holding the
    /// checkpoint's row lock, so that no commit (which publishes, then records) lands between reading the files and
    /// acting on the folder.
    /// </summary>
    public async Task WhileLockedAsync(Action<IReadOnlyList<LakeFile>> work, CancellationToken cancellation)
    {
        await using var connection = await OpenAsync(cancellation);
        await using var transaction = await connection.BeginTransactionAsync(cancellation);
        await using (var command = new NpgsqlCommand($"SELECT last_seq FROM {_schema}.lake_checkpoints WHERE lake = $1 FOR UPDATE", connection, transaction))
        {
            command.Parameters.Add(new NpgsqlParameter { Value = lake });
            await command.ExecuteNonQueryAsync(cancellation);
        }
        work(await FilesAsync(connection, transaction, "true", cancellation));
        await transaction.CommitAsync(cancellation);
    }

    /// <summary>Records the digest of a committed file that was written again.</summary>
    public async Task RecordDigestAsync(string path, string sha256, CancellationToken cancellation)
    {
        await using var connection = await OpenAsync(cancellation);
        await using var command = new NpgsqlCommand($"UPDATE {_schema}.lake_files SET sha256 = $3 WHERE lake = $1 AND path = $2", connection);
        command.Parameters.Add(new NpgsqlParameter { Value = lake });
        command.Parameters.Add(new NpgsqlParameter { Value = path });
        command.Parameters.Add(new NpgsqlParameter { Value = sha256 });
        await command.ExecuteNonQueryAsync(cancellation);
    }

    /// <summary>Forgets the lake (for a rebuild into a fresh folder).</summary>
    public async Task ResetAsync(CancellationToken cancellation)
    {
        await using var connection = await OpenAsync(cancellation);
        await using var batch = new NpgsqlBatch(connection)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand($"DELETE FROM {_schema}.lake_files WHERE lake = $1") { Parameters = { new() { Value = lake } } },
                new NpgsqlBatchCommand($"UPDATE {_schema}.lake_checkpoints SET last_seq = 0, snapshots_from = 0 WHERE lake = $1") { Parameters = { new() { Value = lake } } },
            },
        };
        await batch.ExecuteNonQueryAsync(cancellation);
    }
}
