using JasperFx;
using Marten;
using Npgsql;
using Weasel.Core;
using Weasel.Core.Migrations;
using Weasel.Postgresql;
using Weasel.Postgresql.Tables;

namespace Pipeline.Infra.Postgres;

/// <summary>
/// Creates and migrates schema through Marten (Weasel) under Marten's own apply lock (<c>ApplyChangesLockId</c>), waiting
/// for it: processes that start together would otherwise race on PostgreSQL's catalog, and Marten's start-up apply stops
/// waiting after a bounded time (about 10 s here).
/// </summary>
public static class SchemaObjects
{
    /// <summary>Creates or updates every table, function and index the store is configured with, the areas' tables included.</summary>
    public static async Task ApplySchemaAsync(this IDocumentStore store, CancellationToken cancellation = default)
    {
        var database = (PostgresqlDatabase)store.Storage.Database;
        await database.ApplyAllConfiguredChangesToDatabaseAsync(new WaitingLock(LockId(store)), AutoCreate.CreateOrUpdate, ct: cancellation);
    }

    /// <summary>Creates or updates just <paramref name="objects"/> (an area's tables), for a process whose store was not configured with them.</summary>
    public static async Task ApplyAsync(this IDocumentStore store, ISchemaObject[] objects, CancellationToken cancellation)
    {
        var lockId = LockId(store);
        await using var connection = (NpgsqlConnection)store.Storage.Database.CreateConnection();
        await connection.OpenAsync(cancellation);
        await connection.GetGlobalLock(lockId, cancellation);
        try
        {
            await objects.MigrateAsync(connection, cancellation);
        }
        finally
        {
            await connection.ReleaseGlobalLock(lockId, CancellationToken.None);
        }
    }

    /// <summary>A table of the project's in <paramref name="schema"/>, its primary key named as PostgreSQL names it (as the tables made before Marten managed them have it).</summary>
    public static Table Table(string schema, string name) => new($"{schema}.{name}") { PrimaryKeyName = $"{name}_pkey" };

    private static int LockId(IDocumentStore store) => ((StoreOptions)store.Options).ApplyChangesLockId;

    /// <summary>Marten's lock, waited for rather than tried.</summary>
    private sealed class WaitingLock(int lockId) : IGlobalLock<NpgsqlConnection>
    {
        public async Task<AttainLockResult> TryAttainLock(NpgsqlConnection conn, CancellationToken ct = default)
        {
            await conn.GetGlobalLock(lockId, ct);
            return AttainLockResult.Success;
        }

        public Task ReleaseLock(NpgsqlConnection conn, CancellationToken ct = default) => conn.ReleaseGlobalLock(lockId, ct);
    }
}
