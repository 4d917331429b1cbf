using Marten;
using Npgsql;
using NpgsqlTypes;
using Pipeline.Infra.Postgres;
using Pipeline.Marketplace.Exports;
using Weasel.Postgresql.Tables;

namespace Pipeline.Marketplace.ExportJobs;

/// <summary>
/// Export jobs as rows in PostgreSQL, so every API replica answers for every job. A job is run by one replica (its
/// <c>runner</c>), which writes its progress and a heartbeat; every change of a job's state is conditional on the state
/// it changes from, so a replica that finds a job's runner silent can fail it, and the runner, if it was only slow,
/// can then neither move it on nor charge it. Times compared across replicas are the database's (<c>now()</c>), so
/// their clocks need not agree.
/// </summary>
public sealed class ExportJobStore(NpgsqlDataSource dataSource, IDocumentStore store)
{
    public const string TableName = "market_export_jobs";
    private const string Unfinished = "status IN ('queued', 'running')";
    private const string Columns = "id, grant_id, shards, status, stage, done, total, rows, charge_id, error, created_at";

    private readonly string _table = $"{store.Schema()}.{TableName}";

    /// <summary>One row per job: who may see it, what it is, how far it got, and which replica runs it and when it last said so.</summary>
    public static Table Table(string schema)
    {
        var jobs = SchemaObjects.Table(schema, TableName);
        jobs.AddColumn("id", "text").AsPrimaryKey();
        jobs.AddColumn("buyer_id", "text").NotNull();
        jobs.AddColumn("grant_id", "text").NotNull();
        jobs.AddColumn("shards", "integer").NotNull();
        jobs.AddColumn("status", "text").NotNull();
        jobs.AddColumn("stage", "text");
        jobs.AddColumn("done", "integer").NotNull();
        jobs.AddColumn("total", "integer").NotNull();
        jobs.AddColumn("rows", "bigint");
        jobs.AddColumn("charge_id", "text");
        jobs.AddColumn("error", "text");
        jobs.AddColumn("created_at", "timestamptz").NotNull();
        jobs.AddColumn("runner", "text").NotNull();
        jobs.AddColumn("heartbeat_at", "timestamptz").NotNull();
        return jobs;
    }

    public async Task InsertAsync(string buyerId, ExportJob job, string runner, CancellationToken cancellation)
    {
        await using var command = Command($"""
            INSERT INTO {_table} (id, buyer_id, grant_id, shards, status, done, total, created_at, runner, heartbeat_at)
            VALUES ($1, $2, $3, $4, $5, 0, 0, $6, $7, now())
            """, job.Id, buyerId, job.GrantId, job.Shards, job.Status.ToString().ToLowerInvariant(), job.CreatedAt, runner);
        await command.ExecuteNonQueryAsync(cancellation);
    }

    /// <summary>Queued to running, if the job is still this runner's; false when another replica failed it meanwhile.</summary>
    public async Task<bool> StartAsync(string id, string runner, CancellationToken cancellation)
    {
        await using var command = Command($"UPDATE {_table} SET status = 'running', heartbeat_at = now() WHERE id = $1 AND runner = $2 AND status = 'queued'", id, runner);
        return await command.ExecuteNonQueryAsync(cancellation) == 1;
    }

    /// <summary>
    /// The runner's heartbeat, with the latest progress of each of its jobs, in one round trip; answers the jobs that
    /// are no longer its to run (failed by another replica that found it silent).
    /// </summary>
    public async Task<IReadOnlyList<string>> HeartbeatAsync(string runner, IReadOnlyList<(string Id, ExportProgress? Progress)> jobs, CancellationToken cancellation)
    {
        await using var batch = dataSource.CreateBatch();
        foreach (var (id, progress) in jobs)
            batch.BatchCommands.Add(BatchCommand($"""
                UPDATE {_table} SET heartbeat_at = now(), stage = coalesce($3, stage), done = coalesce($4, done), total = coalesce($5, total)
                WHERE id = $1 AND runner = $2 AND {Unfinished}
                """, id, runner, progress?.Stage.ToString(), progress?.Done, progress?.Total));
        await batch.ExecuteNonQueryAsync(cancellation);
        return [.. jobs.Where((_, i) => batch.BatchCommands[i].RecordsAffected == 0).Select(j => j.Id)];
    }

    /// <summary>Marks the job failed with <paramref name="error"/> if it is still this runner's and unfinished.</summary>
    public async Task FailAsync(string id, string runner, string error, CancellationToken cancellation)
    {
        await using var command = Command($"UPDATE {_table} SET status = 'failed', error = $3 WHERE id = $1 AND runner = $2 AND {Unfinished}", id, runner, error);
        await command.ExecuteNonQueryAsync(cancellation);
    }

    /// <summary>
    /// Queues, in the charge's own transaction, the job's move to done. If the job is no longer this runner's running job
    /// (another replica failed it), the status becomes NULL and the NOT NULL column refuses it: the whole transaction,
    /// charge included, is rolled back (<see cref="IsTakenOver"/>), so a job is charged if and only if it is done.
    /// </summary>
    public void FinishWithCharge(IDocumentSession session, string id, string runner, long rows, string chargeId) =>
        session.QueueSqlCommand($"""
            UPDATE {_table} SET status = CASE WHEN runner = ? AND status = 'running' THEN 'done' END, rows = ?, charge_id = ?, stage = 'Done', heartbeat_at = now()
            WHERE id = ?
            """, runner, rows, chargeId, id);

    /// <summary>Whether <paramref name="e"/> is <see cref="FinishWithCharge"/> refusing a job that is no longer the runner's.</summary>
    public static bool IsTakenOver(Exception e)
    {
        for (Exception? inner = e; inner is not null; inner = inner.InnerException)
            if (inner is PostgresException { SqlState: PostgresErrorCodes.NotNullViolation, TableName: TableName, ColumnName: "status" }) return true;
        return false;
    }

    /// <summary>
    /// The job, if it is this buyer's. An unfinished job whose runner has not beaten for <paramref name="silence"/> is
    /// failed first, saying which replica stopped and when; <c>TakenOver</c> is true when this call did it. A row locked
    /// by a charge in flight is skipped, not waited for: a status request never waits on a charge.
    /// </summary>
    public async Task<(ExportJob? Job, bool TakenOver)> FindAsync(string buyerId, string id, TimeSpan silence, CancellationToken cancellation)
    {
        // One round trip: the failing UPDATE and the plain read in one statement. The read sees the row as it was before
        // the UPDATE (one snapshot), so it answers only when the UPDATE did not.
        await using var command = Command($"""
            WITH failed AS (
                UPDATE {_table} SET status = 'failed',
                    error = 'The API replica running this export (' || runner || ') stopped: its last heartbeat was at '
                            || to_char(heartbeat_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || '. Nothing was charged; start the export again.'
                WHERE id = (SELECT id FROM {_table} WHERE id = $1 AND buyer_id = $2 AND {Unfinished} AND heartbeat_at < now() - $3 FOR UPDATE SKIP LOCKED)
                RETURNING {Columns})
            SELECT {Columns}, true FROM failed
            UNION ALL
            SELECT {Columns}, false FROM {_table} WHERE id = $1 AND buyer_id = $2 AND NOT EXISTS (SELECT FROM failed)
            """, id, buyerId, silence);
        await using var reader = await command.ExecuteReaderAsync(cancellation);
        return await reader.ReadAsync(cancellation) ? (Read(reader), reader.GetBoolean(11)) : (null, false);
    }

    private static ExportJob Read(NpgsqlDataReader reader) => new(
        reader.GetString(0), reader.GetString(1), reader.GetInt32(2), Enum.Parse<ExportStatus>(reader.GetString(3), ignoreCase: true),
        reader.IsDBNull(4) ? null : Enum.Parse<ExportStage>(reader.GetString(4)), reader.GetInt32(5), reader.GetInt32(6),
        reader.IsDBNull(7) ? null : reader.GetInt64(7), reader.IsDBNull(8) ? null : reader.GetString(8), reader.IsDBNull(9) ? null : reader.GetString(9),
        reader.GetFieldValue<DateTimeOffset>(10));

    private NpgsqlCommand Command(string sql, params object?[] values)
    {
        var command = dataSource.CreateCommand(sql);
        foreach (var value in values) command.Parameters.Add(Parameter(value));
        return command;
    }

    private static NpgsqlBatchCommand BatchCommand(string sql, params object?[] values)
    {
        var command = new NpgsqlBatchCommand(sql);
        foreach (var value in values) command.Parameters.Add(Parameter(value));
        return command;
    }

    private static NpgsqlParameter Parameter(object? value) => value switch
    {
        DateTimeOffset time => new NpgsqlParameter { Value = time, NpgsqlDbType = NpgsqlDbType.TimestampTz },
        TimeSpan span => new NpgsqlParameter { Value = span, NpgsqlDbType = NpgsqlDbType.Interval },
        // The heartbeat's progress is absent for a queued job: typed nulls, so coalesce keeps what the row has.
        null => new NpgsqlParameter { Value = DBNull.Value },
        _ => new NpgsqlParameter { Value = value },
    };
}
