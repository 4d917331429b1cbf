using Npgsql;

namespace Pipeline.Infra.Postgres;

/// <summary>
/// Idempotent DDL (CREATE … IF NOT EXISTS) run in one transaction under an advisory lock: processes that start together
/// would otherwise race on PostgreSQL's catalog and fail with a duplicate type.
/// </summary>
public static class SchemaScript
{
    public static async Task ApplyAsync(NpgsqlDataSource dataSource, string lockName, string ddl, CancellationToken cancellation)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellation);
        await using var transaction = await connection.BeginTransactionAsync(cancellation);
        await using (var serialise = new NpgsqlCommand("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", connection, transaction) { Parameters = { new() { Value = lockName } } })
            await serialise.ExecuteNonQueryAsync(cancellation);
        await using (var command = new NpgsqlCommand(ddl, connection, transaction))
            await command.ExecuteNonQueryAsync(cancellation);
        await transaction.CommitAsync(cancellation);
    }
}
