using Marten;
using Marten.Services;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Pipeline.Infra.Postgres;

/// <summary>
/// The store's logger: Marten's messages (schema changes, failures, and at Debug every statement), except that an append
/// which lost the race for a stream's version is not logged as a failure. That conflict is always thrown to the caller,
/// which decides again on the new state or refuses (a charge on an account another replica or a payment changed first);
/// Marten's own logger called each one an error, with the SQL. Set on the store, not a session: Marten 9 writes a
/// session's batch through the logger the store gave the session, whatever is set on the session afterwards.
/// </summary>
public sealed class MartenLog(ILogger logger) : IMartenLogger, IMartenSessionLogger
{
    public IMartenSessionLogger StartSession(IQuerySession session) => this;

    public void SchemaChange(string sql) => logger.LogInformation("Executed schema update SQL:\n{Sql}", sql);

    public void LogSuccess(NpgsqlCommand command)
    {
        if (logger.IsEnabled(LogLevel.Debug)) logger.LogDebug("Marten executed: {Sql}", command.CommandText);
    }

    public void LogSuccess(NpgsqlBatch batch)
    {
        if (logger.IsEnabled(LogLevel.Debug))
            foreach (var command in batch.BatchCommands) logger.LogDebug("Marten executed: {Sql}", command.CommandText);
    }

    // Statements only, never their parameters: those are documents and events, readings and keys' hashes among them.
    public void LogFailure(NpgsqlCommand command, Exception ex)
    {
        if (!IsVersionConflict(ex)) logger.LogError(ex, "Marten failed executing: {Sql}", command.CommandText);
    }

    public void LogFailure(NpgsqlBatch batch, Exception ex)
    {
        if (!IsVersionConflict(ex)) logger.LogError(ex, "Marten failed executing: {Sql}", string.Join(";\n", batch.BatchCommands.Select((NpgsqlBatchCommand c) => c.CommandText)));
    }

    public void LogFailure(Exception ex, string message)
    {
        if (!IsVersionConflict(ex)) logger.LogError(ex, "Marten: {Message}", message);
    }

    public void RecordSavedChanges(IDocumentSession session, IChangeSet commit)
    {
    }

    public void OnBeforeExecute(NpgsqlCommand command)
    {
    }

    public void OnBeforeExecute(NpgsqlBatch batch)
    {
    }

    /// <summary>
    /// An append that lost the race for the stream's next version: Marten's concurrency error, or under it what
    /// PostgreSQL raised — the append function's version check (MT003) or, when both appends passed it, the unique
    /// (stream, version).
    /// </summary>
    public static bool IsVersionConflict(Exception ex)
    {
        for (var e = ex; e is not null; e = e.InnerException)
            if (e is JasperFx.ConcurrencyException
                or PostgresException { SqlState: "MT003" }
                or PostgresException { SqlState: PostgresErrorCodes.UniqueViolation, ConstraintName: "pk_mt_events_stream_and_version" })
                return true;
        return false;
    }
}
