using Microsoft.Extensions.Logging;
using Npgsql;

namespace Pipeline.Projections.Lake;

/// <summary>A partition's rows and content digest in the live lake and in the rebuilt one.</summary>
public sealed record PartitionComparison(string Dataset, DateOnly Date, long LiveRows, string? LiveHash, long RebuiltRows, string? RebuiltHash)
{
    public bool Equal => LiveRows == RebuiltRows && LiveHash == RebuiltHash;
}

/// <summary>How far a rebuild is: the event sequence projected so far, of the one it rebuilds up to.</summary>
public readonly record struct RebuildProgress(long Through, long Target);

/// <summary>
/// Recreates the lake from the event store in a fresh folder next to the live one (its name + "-rebuild", so the swap is
/// a rename on one file system), up to the live lake's checkpoint, and compares the two partition by partition. With
/// replace, the rebuilt lake becomes the live one (while no projector runs) and the live one moves to its name + "-previous".
/// </summary>
public static class LakeRebuild
{
    public const string RebuildLake = "rebuild";

    private static string RebuildDirectory(string liveDirectory) => liveDirectory + "-rebuild";

    private static string PreviousDirectory(string liveDirectory) => liveDirectory + "-previous";

    /// <summary>Rebuilds and compares; <paramref name="progress"/> hears the sequence reached after each round.</summary>
    public static async Task<(IReadOnlyList<PartitionComparison> Partitions, long Through, string Directory)> RunAsync(LakeStore store, string dataDirectory, LakeOptions options, ILogger logger, IProgress<RebuildProgress>? progress, CancellationToken cancellation)
    {
        var live = store.Manifest(LakeProjector.LiveLake);
        await live.EnsureSchemaAsync(cancellation);
        var liveDirectory = options.ResolveDirectory(dataDirectory);
        var through = await live.CheckpointAsync(cancellation);

        var rebuilt = store.Manifest(RebuildLake);
        await rebuilt.EnsureSchemaAsync(cancellation);
        await rebuilt.ResetAsync(cancellation);
        var directory = RebuildDirectory(liveDirectory);
        if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
        Directory.CreateDirectory(directory);
        var writer = new LakeWriter(store, rebuilt, directory, options, metrics: null, logger);
        progress?.Report(new(0, through));
        while (await writer.ProjectAsync(until: through, cancellation) > 0) progress?.Report(new(await rebuilt.CheckpointAsync(cancellation), through));
        await writer.CompactAsync(force: true, cancellation);

        using var liveLake = LakeCatalog.Open(liveDirectory, await live.FilesAsync(cancellation), options.EpochLength);
        using var rebuiltLake = LakeCatalog.Open(directory, await rebuilt.FilesAsync(cancellation), options.EpochLength);
        var before = LakeCatalog.PartitionHashes(liveLake, through);
        var after = LakeCatalog.PartitionHashes(rebuiltLake, through);
        var partitions = before.Keys.Union(after.Keys).Order().Select(key =>
        {
            var (liveRows, liveHash) = before.TryGetValue(key, out var l) ? l : (0, null);
            var (rebuiltRows, rebuiltHash) = after.TryGetValue(key, out var r) ? r : (0, null);
            return new PartitionComparison(key.Dataset, key.Date, liveRows, liveHash, rebuiltRows, rebuiltHash);
        }).ToList();
        return (partitions, through, directory);
    }

    /// <summary>Refuses (one line) while a projector leads the live lake: a rebuild could not replace it afterwards.</summary>
    public static async Task EnsureNoProjectorAsync(LakeStore store, CancellationToken cancellation)
    {
        await store.Manifest(LakeProjector.LiveLake).EnsureSchemaAsync(cancellation);
        // The lead is the session's: closing it lets the lead go again.
        await using var probe = await store.TryLeadAsync(LakeProjector.LiveLake, cancellation) ?? throw new InvalidOperationException(ProjectorRunning);
    }

    private const string ProjectorRunning = "A projector is running on this lake (depin up or depin projections); stop it before replacing the lake, or leave out --replace to rebuild and compare only.";

    /// <summary>
    /// Makes the rebuilt lake the live one: needs the live lake's lock, so no projector may be running. Returns the
    /// folder the previous live lake moved to.
    /// </summary>
    public static async Task<string> ReplaceAsync(LakeStore store, string dataDirectory, LakeOptions options, long through, CancellationToken cancellation)
    {
        await using var leadership = await store.TryLeadAsync(LakeProjector.LiveLake, cancellation) ?? throw new InvalidOperationException(ProjectorRunning);
        var liveDirectory = options.ResolveDirectory(dataDirectory);
        var rebuiltDirectory = RebuildDirectory(liveDirectory);
        if (!Directory.Exists(rebuiltDirectory)) throw new InvalidOperationException($"There is no rebuilt lake in {rebuiltDirectory}; run depin lake rebuild first.");
        var schema = store.Schema;
        await using var transaction = await leadership.BeginTransactionAsync(cancellation);
        await using (var swap = new NpgsqlBatch(leadership, transaction)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand($"DELETE FROM {schema}.lake_files WHERE lake = $1") { Parameters = { new() { Value = LakeProjector.LiveLake } } },
                new NpgsqlBatchCommand($"UPDATE {schema}.lake_files SET lake = $1 WHERE lake = $2") { Parameters = { new() { Value = LakeProjector.LiveLake }, new() { Value = RebuildLake } } },
                new NpgsqlBatchCommand($"UPDATE {schema}.lake_checkpoints SET last_seq = $2 WHERE lake = $1") { Parameters = { new() { Value = LakeProjector.LiveLake }, new() { Value = through } } },
                new NpgsqlBatchCommand($"UPDATE {schema}.lake_checkpoints SET last_seq = 0 WHERE lake = $1") { Parameters = { new() { Value = RebuildLake } } },
            },
        })
        {
            await swap.ExecuteNonQueryAsync(cancellation);
        }
        var previous = PreviousDirectory(liveDirectory);
        if (Directory.Exists(previous)) Directory.Delete(previous, recursive: true);
        var hadLive = Directory.Exists(liveDirectory);
        if (hadLive) Directory.Move(liveDirectory, previous);
        try
        {
            Directory.Move(rebuiltDirectory, liveDirectory);
        }
        catch (IOException) when (hadLive)
        {
            // The manifest swap rolls back with the transaction; the folders go back with it.
            Directory.Move(previous, liveDirectory);
            throw;
        }
        await transaction.CommitAsync(cancellation);
        return previous;
    }
}
