using Npgsql;

namespace Pipeline.Infra.Postgres;

/// <summary>
/// One leader at a time for work that stays outside Marten's daemon (the lake projector, the dead-letter relay): a
/// session-level advisory lock on a session of its own. The lead lasts as long as that session; losing it (the server
/// or the link goes) ends the lead, and the work done on the session fails with it.
/// </summary>
public sealed class LeaderElection(PostgresSessions sessions)
{
    /// <summary>The session holding the lead named <paramref name="name"/>, or null when another session holds it.</summary>
    public async Task<NpgsqlConnection?> TryLeadAsync(string name, CancellationToken cancellation)
    {
        var session = await sessions.OpenAsync(name, cancellation);
        try
        {
            await using var command = new NpgsqlCommand("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", session) { Parameters = { new() { Value = name } } };
            if ((bool)(await command.ExecuteScalarAsync(cancellation))!) return session;
        }
        catch
        {
            await session.DisposeAsync();
            throw;
        }
        await session.DisposeAsync();
        return null;
    }
}
