using DuckDB.NET.Data;
using Npgsql;
using Pipeline.Projections.Lake;

namespace Pipeline.Tests.Integration.Projections;

/// <summary>Waits for the lake to catch up with the event store, and opens DuckDB over it as the marketplace would.</summary>
public static class LakeProbe
{
    public static async Task<long> LastEventAsync(IPipelineView stack)
    {
        await using var connection = new NpgsqlConnection(stack.PostgresConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand($"SELECT coalesce(max(seq_id), 0) FROM {stack.Schema}.mt_events", connection);
        return (long)(await command.ExecuteScalarAsync())!;
    }

    /// <summary>Until the live lake's checkpoint reaches the last event in the store.</summary>
    public static async Task WaitForLakeAsync(TestHost stack, string lake = LakeProjector.LiveLake, TimeSpan? timeout = null)
    {
        var manifest = stack.Lake.Manifest(lake);
        await manifest.EnsureSchemaAsync(CancellationToken.None);
        var target = await LastEventAsync(stack);
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(60));
        while (await manifest.CheckpointAsync(CancellationToken.None) < target)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"The lake did not reach event {target} (at {await manifest.CheckpointAsync(CancellationToken.None)}).");
            await Task.Delay(100);
        }
    }

    public static async Task<DuckDBConnection> OpenAsync(TestHost stack, string directory, string lake = LakeProjector.LiveLake, TimeSpan? epoch = null) =>
        LakeCatalog.Open(directory, await stack.Lake.Manifest(lake).FilesAsync(CancellationToken.None), epoch ?? TimeSpan.FromHours(1));

    public static List<Dictionary<string, object?>> Query(DuckDBConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        using var reader = command.ExecuteReader();
        var rows = new List<Dictionary<string, object?>>();
        while (reader.Read()) rows.Add(Enumerable.Range(0, reader.FieldCount).ToDictionary(reader.GetName, i => reader.IsDBNull(i) ? null : reader.GetValue(i)));
        return rows;
    }
}
