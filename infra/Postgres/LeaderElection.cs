using System.Collections.Concurrent;
using Npgsql;

namespace Pipeline.Infra.Postgres;

/// <summary>
/// One leader at a time for work that stays outside Marten's daemon (the lake projector, the dead-letter relay): a
/// session-level advisory lock on a session of its own. The lead lasts as long as that session; losing it (the server
/// or the link goes) ends the lead, and the work done on the session fails with it.
/// </summary>
public sealed class LeaderElection(PostgresSessions sessions) : IAsyncDisposable
{
    /// <summary>
    /// A follower's session, kept for its next try: a new session costs PostgreSQL a backend's start (~50 ms of CPU
    /// measured under `bench e2e`, issue 16), and followers try every few seconds for as long as they run.
    /// </summary>
    private readonly ConcurrentDictionary<string, NpgsqlConnection> _waiting = new(StringComparer.Ordinal);

    /// <summary>The session holding the lead named <paramref name="name"/>, or null when another session holds it.</summary>
    public async Task<NpgsqlConnection?> TryLeadAsync(string name, CancellationToken cancellation)
    {
        if (_waiting.TryRemove(name, out var kept))
        {
            if (kept.State != System.Data.ConnectionState.Open) await kept.DisposeAsync();
            else
            {
                try
                {
                    return await TryLockAsync(name, kept, cancellation);
                }
                catch (Exception e) when (e is NpgsqlException or IOException)
                {
                    // The kept session died (the server restarted, or an operator ended it): a new one decides.
                }
            }
        }
        return await TryLockAsync(name, await sessions.OpenAsync(name, cancellation), cancellation);
    }

    private async Task<NpgsqlConnection?> TryLockAsync(string name, NpgsqlConnection session, CancellationToken cancellation)
    {
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
        if (!_waiting.TryAdd(name, session)) await session.DisposeAsync();
        return null;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var name in _waiting.Keys)
            if (_waiting.TryRemove(name, out var session)) await session.DisposeAsync();
    }
}
