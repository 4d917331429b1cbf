using Microsoft.Extensions.Options;
using Pipeline.Infra.Hosting;
using Pipeline.Projections.Lake;

namespace Pipeline.Marketplace.Catalog;

/// <summary>The lake's committed files at one checkpoint, with absolute paths, by dataset.</summary>
public sealed record LakeSnapshot(long Checkpoint, IReadOnlyList<LakeFile> Files, string Directory)
{
    public IReadOnlyList<string> PathsOf(string dataset) =>
        Files.Where(f => f.Dataset == dataset).Select(f => Path.Combine(Directory, f.Path)).ToList();
}

/// <summary>Reads the live lake's manifest for the marketplace: which files a query or the catalog reads, at which checkpoint.</summary>
public sealed class MarketLake(LakeStore store, IOptions<LakeOptions> lake, IOptions<DataOptions> data)
{
    private readonly LakeManifest _manifest = store.Manifest(LakeProjector.LiveLake);
    private Task? _schema;
    private ReadSnapshot? _latest;

    /// <summary>How long the files of the last snapshot read are used again while the checkpoint stands still.</summary>
    public static readonly TimeSpan ReuseFilesFor = TimeSpan.FromSeconds(5);

    private sealed record ReadSnapshot(LakeSnapshot Snapshot, DateTimeOffset ReadAt);

    public TimeSpan EpochLength => lake.Value.EpochLength;

    public string Directory => lake.Value.ResolveDirectory(data.Value.FullPath);

    /// <summary>
    /// The files and the checkpoint they were committed with: read until the checkpoint stands still across the read.
    /// The last snapshot is reused while the checkpoint stays where it was, for at most <see cref="ReuseFilesFor"/>, so most
    /// calls read only the checkpoint. Compaction replaces files without moving the checkpoint (the same rows in fewer
    /// files); the replaced ones stay on disk for Lake:SnapshotRetention (at least 30 s), far longer than a reuse.
    /// </summary>
    public async Task<LakeSnapshot> SnapshotAsync(CancellationToken cancellation)
    {
        await EnsureSchemaAsync().WaitAsync(cancellation);
        var before = await _manifest.CheckpointAsync(cancellation);
        while (true)
        {
            if (Volatile.Read(ref _latest) is { } latest && latest.Snapshot.Checkpoint == before && store.Clock.GetUtcNow() - latest.ReadAt < ReuseFilesFor)
                return latest.Snapshot;
            var readAt = store.Clock.GetUtcNow();
            var files = await _manifest.FilesAsync(cancellation);
            var after = await _manifest.CheckpointAsync(cancellation);
            if (after == before)
            {
                var snapshot = new LakeSnapshot(before, files, Directory);
                Volatile.Write(ref _latest, new ReadSnapshot(snapshot, readAt));
                return snapshot;
            }
            before = after;
        }
    }

    /// <summary>
    /// The lake as it was at <paramref name="asOf"/> (a checkpoint it committed, or any sequence number: the files of the
    /// last commit at or before it), for reproducible reads. Refused when ahead of the lake, or older than the snapshots
    /// the lake still keeps the files of (410 snapshot_expired).
    /// </summary>
    public async Task<LakeSnapshot> SnapshotAtAsync(long asOf, CancellationToken cancellation)
    {
        await EnsureSchemaAsync().WaitAsync(cancellation);
        var set = await _manifest.FilesAtAsync(asOf, cancellation);
        if (set.Ahead)
            throw new MarketRefusedException(Microsoft.AspNetCore.Http.StatusCodes.Status400BadRequest, MarketReason.InvalidRequest,
                $"as_of {asOf} is ahead of the lake, which is at checkpoint {set.LakeCheckpoint}; leave it out to read the lake as it is now.");
        if (set.Expired)
            throw new MarketRefusedException(Microsoft.AspNetCore.Http.StatusCodes.Status410Gone, MarketReason.SnapshotExpired,
                $"The lake no longer keeps the files of checkpoint {asOf}: snapshots from checkpoint {set.SnapshotsFrom} on can be read (Lake:SnapshotRetention).");
        return new LakeSnapshot(asOf, set.Files, Directory);
    }

    /// <summary>Once per process, but tried again after a failure: one refused connection must not break the marketplace until a restart.</summary>
    private Task EnsureSchemaAsync()
    {
        var schema = Volatile.Read(ref _schema);
        if (schema is null || schema.IsFaulted || schema.IsCanceled)
        {
            schema = _manifest.EnsureSchemaAsync(CancellationToken.None);
            Volatile.Write(ref _schema, schema);
        }
        return schema;
    }
}
