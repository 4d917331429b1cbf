using System.Net.Sockets;
using System.Text;
using Npgsql;

namespace Pipeline.Infra.Postgres;

/// <summary>What a failure while reading or writing the store means: to the processors (retry, split or stop) and to an HTTP caller (503 or 500).</summary>
public enum FailureKind
{
    /// <summary>Not the database: a bug, which stops the host.</summary>
    NotDatabase,

    /// <summary>
    /// PostgreSQL refused a value the batch carries (SQLSTATE class 22 data exception, 23 integrity constraint, 54
    /// program limit) or a value has no UTF-8 form. The same statement fails again however long one waits, so it is never
    /// retried: the batch is split until the messages it refuses stand alone, and those are dead-lettered.
    /// </summary>
    Content,

    /// <summary>
    /// The database cannot serve now: no connection (sockets, timeouts, 08xxx), shutting down or starting
    /// (57P01–57P03), out of resources (53xxx), or any other server error no message's content can cause — the
    /// statements are parameterised, so a missing table (42P01 mid-migration) or a serialization failure (40001) is the
    /// server's state, not the batch's. Waited out; the batch and its offsets wait.
    /// </summary>
    Outage,
}

public static class DatabaseFailure
{
    /// <summary>Classifies an exception as Npgsql throws it or as Marten wraps it (the Npgsql error is inside).</summary>
    public static FailureKind Classify(Exception exception)
    {
        var outage = false;
        foreach (var e in Chain(exception))
        {
            switch (e)
            {
                case PostgresException postgres when IsContent(postgres.SqlState):
                case EncoderFallbackException:
                    return FailureKind.Content;
                case NpgsqlException or TimeoutException or SocketException:
                    outage = true;
                    break;
            }
        }
        return outage ? FailureKind.Outage : FailureKind.NotDatabase;
    }

    /// <summary>A sentence naming what PostgreSQL refused, for the dead letter of the message it refused.</summary>
    public static string Describe(Exception exception) =>
        Chain(exception).OfType<PostgresException>().FirstOrDefault() is { } postgres
            ? $"SQLSTATE {postgres.SqlState}: {postgres.MessageText}"
            : Chain(exception).Last().Message;

    private static bool IsContent(string sqlState) => sqlState.StartsWith("22", StringComparison.Ordinal) || sqlState.StartsWith("23", StringComparison.Ordinal) || sqlState.StartsWith("54", StringComparison.Ordinal);

    private static IEnumerable<Exception> Chain(Exception exception)
    {
        var pending = new Stack<Exception>([exception]);
        while (pending.TryPop(out var e))
        {
            yield return e;
            if (e is AggregateException aggregate)
            {
                foreach (var inner in aggregate.InnerExceptions) pending.Push(inner);
            }
            else if (e.InnerException is { } inner)
            {
                pending.Push(inner);
            }
        }
    }
}
