using System.Collections.Concurrent;
using Microsoft.Extensions.Options;
using Npgsql;

namespace Pipeline.Infra.Postgres;

/// <summary>
/// Connections named in pg_stat_activity, for work an operator (or a test) must be able to tell apart: sessions of their
/// own, outside the pool, for what lives as long as a session — LISTEN, session-level advisory locks — so closing the
/// connection ends the session and lets them go; and named pools for a stage's own queries. Everything else uses the
/// one <see cref="NpgsqlDataSource"/>.
/// </summary>
public sealed class PostgresSessions(IOptions<PostgresOptions> options) : IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, NpgsqlDataSource> _pools = new(StringComparer.Ordinal);

    /// <summary>Opens a session of its own named <paramref name="applicationName"/>, keepalive-probed so a dead link is noticed without traffic.</summary>
    public async Task<NpgsqlConnection> OpenAsync(string applicationName, CancellationToken cancellation)
    {
        var connection = new NpgsqlConnection(Named(applicationName, pooling: false));
        try
        {
            await connection.OpenAsync(cancellation);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    /// <summary>A pool whose connections are named <paramref name="applicationName"/>, made once and kept for the process.</summary>
    public NpgsqlDataSource Pool(string applicationName) =>
        _pools.GetOrAdd(applicationName, name => NpgsqlDataSource.Create(Named(name, pooling: true)));

    private string Named(string applicationName, bool pooling) => new NpgsqlConnectionStringBuilder(options.Value.ConnectionString)
    {
        Pooling = pooling,
        KeepAlive = pooling ? 0 : 10,
        ApplicationName = applicationName,
    }.ConnectionString;

    public async ValueTask DisposeAsync()
    {
        foreach (var pool in _pools.Values) await pool.DisposeAsync();
    }
}
