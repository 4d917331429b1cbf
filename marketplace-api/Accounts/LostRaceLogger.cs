using Marten;
using Marten.Services;
using Npgsql;

namespace Pipeline.Marketplace.Accounts;

/// <summary>
/// The session logger of a change to an account. When another charge or purchase appended to the account first, the
/// append fails on the stream's version and the decision is made again on the new state (<see cref="MarketAccounts"/>):
/// an expected outcome of two requests at once, which the retry logs, not the error Marten's own logger makes of it.
/// Every other failure, and everything else, goes to Marten's logger unchanged.
/// </summary>
public sealed class LostRaceLogger(IMartenSessionLogger marten) : IMartenSessionLogger
{
    public void LogFailure(NpgsqlBatch batch, Exception ex)
    {
        if (!IsVersionConflict(ex)) marten.LogFailure(batch, ex);
    }

    public void LogFailure(NpgsqlCommand command, Exception ex)
    {
        if (!IsVersionConflict(ex)) marten.LogFailure(command, ex);
    }

    public void LogFailure(Exception ex, string message)
    {
        if (!IsVersionConflict(ex)) marten.LogFailure(ex, message);
    }

    public void LogSuccess(NpgsqlCommand command) => marten.LogSuccess(command);

    public void LogSuccess(NpgsqlBatch batch) => marten.LogSuccess(batch);

    public void RecordSavedChanges(IDocumentSession session, IChangeSet commit) => marten.RecordSavedChanges(session, commit);

    public void OnBeforeExecute(NpgsqlCommand command) => marten.OnBeforeExecute(command);

    public void OnBeforeExecute(NpgsqlBatch batch) => marten.OnBeforeExecute(batch);

    /// <summary>
    /// The append lost the race for the stream's next version: Marten's concurrency error, or under it what PostgreSQL
    /// raised — the append function's version check (MT003) or, when both appends passed it, the unique (stream, version).
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
