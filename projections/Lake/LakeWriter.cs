using Marten;
using Microsoft.Extensions.Logging;
using Pipeline.Registry;

namespace Pipeline.Projections.Lake;

/// <summary>Thrown when the checkpoint moved under a writer: another projector leads this lake now.</summary>
public sealed class LakeTakenOverException() : Exception("Another projector committed to this lake; this one stops writing.");

/// <summary>
/// Extends one lake: reads the next events, writes their rows as Parquet files (synced) into a staging folder, then, in
/// the manifest transaction fenced on the checkpoint, moves the files into place and records them with the new
/// checkpoint. A file the manifest names is therefore on disk. Every step can die without harm: recovery drops staged
/// files and files the manifest does not name, and writes again a committed file that was lost (a rename that power
/// failure undid before the folder reached the disk).
/// </summary>
public sealed class LakeWriter(LakeStore store, LakeManifest manifest, string directory, LakeOptions options, LakeMetrics? metrics, ILogger logger)
{
    private readonly LakeOptions _options = options.Errors() is { Count: > 0 } errors
        ? throw new ArgumentException(string.Join(" ", errors), nameof(options))
        : options;
    private readonly EventFeed _feed = store.Feed();
    private readonly LakeBuilder _builder = new(options.LocationDecimals);
    private readonly Dictionary<string, Device> _devices = new(StringComparer.Ordinal);
    private DateTimeOffset _lastCompaction = DateTimeOffset.MinValue;
    private ReadAhead? _readAhead;

    /// <summary>The next round's events, read while this round's files are written.</summary>
    private sealed record ReadAhead(long After, long? Until, Task<(IReadOnlyList<FeedEvent> Events, long Through)> Read);

    private string Staging => Path.Combine(directory, ".staging");

    /// <summary>Projects the next events (up to <paramref name="until"/>); returns how many, 0 when caught up.</summary>
    public async Task<int> ProjectAsync(long? until, CancellationToken cancellation)
    {
        var checkpoint = await manifest.CheckpointAsync(cancellation);
        var (events, through) = await ReadAsync(checkpoint, until, cancellation);
        if (through == checkpoint) return 0;
        // A full round: more is waiting. Reading it (PostgreSQL and JSON) overlaps writing this one (Arrow, Parquet).
        if (events.Count == _options.MaxEventsPerRound)
            _readAhead = new ReadAhead(through, until, Task.Run(() => _feed.ReadAsync(through, _options.MaxEventsPerRound, until, cancellation), cancellation));

        await LoadDevicesAsync(events.Select(e => e.Device), cancellation);
        var files = new List<LakeFile>();
        foreach (var (dataset, rows) in _builder.Build(events, _devices))
        {
            var file = new LakeFile($"{dataset.Name}/date={rows.Date:yyyy-MM-dd}/part-{rows.FirstSequence}-{rows.LastSequence}.parquet", dataset.Name, rows.Date, rows.FirstSequence, rows.LastSequence, rows.Count, "");
            // In file order, as compaction's merge reads its inputs (and as a recovery writes the file again); written, disposed.
            files.Add(file with { Sha256 = ParquetFiles.Write(Path.Combine(Staging, file.Path), dataset.Schema, [FileOrder.InOrder(dataset.Schema, rows.ToRecordBatch())]) });
        }
        if (!await manifest.CommitAsync(checkpoint, through, files, [], () => files.ForEach(f => Publish(f.Path)), cancellation))
        {
            foreach (var file in files) File.Delete(Path.Combine(Staging, file.Path));
            throw new LakeTakenOverException();
        }
        metrics?.Projected(files, events.Count > 0 ? events[^1] : null);
        return Math.Max(1, events.Count);
    }

    /// <summary>
    /// The events after <paramref name="after"/>: those read ahead when they start there. Any read from the same point
    /// is as good as another: the feed returns only ranges nothing can be added to later.
    /// </summary>
    private async Task<(IReadOnlyList<FeedEvent> Events, long Through)> ReadAsync(long after, long? until, CancellationToken cancellation)
    {
        var ahead = _readAhead;
        _readAhead = null;
        if (ahead is not null && ahead.After == after && ahead.Until == until) return await ahead.Read;
        // Read from elsewhere (the round before failed, or another writer moved the lake): dropped, its failure too.
        _ = ahead?.Read.ContinueWith(t => t.Exception, TaskScheduler.Default);
        return await _feed.ReadAsync(after, _options.MaxEventsPerRound, until, cancellation);
    }

    /// <summary>Projects round after round until caught up (or at <paramref name="until"/>), reporting each round's events.</summary>
    public async Task CatchUpAsync(long? until, IProgress<int>? progress, CancellationToken cancellation)
    {
        while (await ProjectAsync(until, cancellation) is var projected and > 0) progress?.Report(projected);
    }

    /// <summary>Finishes what a writer that died left behind; see the class summary.</summary>
    public async Task RecoverAsync(CancellationToken cancellation)
    {
        // Nothing staged was committed: a commit publishes its files before it records them.
        if (Directory.Exists(Staging)) Directory.Delete(Staging, recursive: true);
        foreach (var file in (await manifest.FilesAsync(cancellation)).Where(f => !File.Exists(Path.Combine(directory, f.Path))))
        {
            await RewriteAsync(file, cancellation);
            logger.LogWarning("Rewrote lake file {Path}, committed but lost", file.Path);
        }
        // Files on disk that the manifest does not name: published by a round or compaction that died before recording
        // them, or compaction inputs whose deletion was cut short. Listed under the manifest's lock, so that a file
        // published and committed meanwhile (by a projector that has not noticed it lost the lead) is not taken for one.
        await manifest.WhileLockedAsync(committed =>
        {
            var named = committed.Select(f => Path.GetFullPath(Path.Combine(directory, f.Path))).ToHashSet();
            foreach (var dataset in LakeDatasets.All)
            {
                var folder = Path.Combine(directory, dataset.Name);
                if (!Directory.Exists(folder)) continue;
                foreach (var path in Directory.EnumerateFiles(folder, "*.parquet", SearchOption.AllDirectories).Where(p => !named.Contains(Path.GetFullPath(p))))
                    File.Delete(path);
            }
        }, cancellation);
    }

    /// <summary>
    /// Merges a day's many small files into one (a few when there are more than <see cref="LakeOptions.CompactMaxFiles"/>),
    /// when due, its rows in <see cref="FileOrder"/> and row groups of <see cref="ParquetFiles.RowGroupRows"/>; the rows do
    /// not change, only how they are spread. Safe beside
    /// <see cref="ProjectAsync"/>: it replaces only files already committed, at whatever checkpoint the lake has reached
    /// when it swaps them, and leaves a partition alone if one of its files was replaced meanwhile.
    /// </summary>
    public async Task CompactAsync(bool force, CancellationToken cancellation)
    {
        var now = store.Clock.GetUtcNow();
        if (!force && now - _lastCompaction < _options.CompactionInterval) return;
        _lastCompaction = now;
        await ExpireAsync(_options.SnapshotRetention, cancellation);
        var files = await manifest.FilesAsync(cancellation);
        var compacted = false;
        var merges = files.Where(f => f.Rows < _options.CompactBelowRows).GroupBy(f => (f.Dataset, f.Date)).Where(g => g.Count() >= _options.CompactAtFiles)
            .SelectMany(partition => Groups(partition.OrderBy(f => f.FirstSequence).ToList(), _options.CompactMaxFiles));
        foreach (var inputs in merges)
        {
            var (dataset, date) = (LakeDatasets.All.Single(d => d.Name == inputs[0].Dataset), inputs[0].Date);
            var first = inputs.Min(f => f.FirstSequence);
            var last = inputs.Max(f => f.LastSequence);
            var merged = new LakeFile($"{dataset.Name}/date={date:yyyy-MM-dd}/part-{first}-{last}.parquet", dataset.Name, date, first, last, inputs.Sum(f => f.Rows), "");
            // An input spanning the whole range would be overwritten by the merge and then deleted as replaced.
            if (inputs.Any(f => f.Path == merged.Path))
            {
                logger.LogWarning("Not compacting {Dataset} {Date}: {Path} already spans the files' range", dataset.Name, date, merged.Path);
                continue;
            }
            var paths = inputs.Select(f => Path.Combine(directory, f.Path)).ToList();
            var staged = Path.Combine(Staging, merged.Path);
            try
            {
                merged = merged with { Sha256 = await FileMerge.WriteAsync(staged, dataset.Schema, paths) };
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // An input it cannot read, a native library's error: the day keeps its small files, the rounds go on, and
                // the next compaction (a CompactionInterval later) tries again. Nothing was published.
                if (File.Exists(staged)) File.Delete(staged); // a merge that failed opening its inputs never made its folder
                metrics?.CompactionFailed(dataset.Name);
                logger.LogError(e, "Compacting {Count} files of {Dataset} {Date} failed; they stay as they are until the next compaction: {Files}", inputs.Count, dataset.Name, date, inputs.Select(f => f.Path));
                continue;
            }
            if (!await manifest.ReplaceAsync(merged, inputs, () => Publish(merged.Path), cancellation))
            {
                File.Delete(staged);
                logger.LogWarning("Not compacting {Dataset} {Date}: its files were replaced meanwhile (another projector leads the lake)", dataset.Name, date);
                continue;
            }
            logger.LogInformation("Compacted {Count} files of {Dataset} into {Path}", inputs.Count, dataset.Name, merged.Path);
            compacted = true;
        }
        // The merge's readers and writer freed their native memory, but glibc keeps it resident in the arenas.
        if (compacted) NativeHeap.Trim();
    }

    /// <summary>
    /// Consecutive files (by sequence) in as few groups of at most <paramref name="most"/> as hold them all, of sizes that
    /// differ by one at most, so no group is a single file left over; each merges into a file whose range no other spans.
    /// </summary>
    private static IEnumerable<List<LakeFile>> Groups(List<LakeFile> files, int most)
    {
        var groups = (files.Count + most - 1) / most;
        for (var g = 0; g < groups; g++)
            yield return files.GetRange(files.Count * g / groups, files.Count * (g + 1) / groups - files.Count * g / groups);
    }

    /// <summary>Deletes the replaced files older than <paramref name="retention"/>: snapshots before their replacement expire with them.</summary>
    public async Task ExpireAsync(TimeSpan retention, CancellationToken cancellation)
    {
        var expired = await manifest.ExpireAsync(retention, cancellation);
        foreach (var file in expired) File.Delete(Path.Combine(directory, file.Path));
        if (expired.Count > 0) logger.LogInformation("Deleted {Count} replaced lake files past their retention ({Retention})", expired.Count, retention);
    }

    /// <summary>Writes a committed file again from its events: the same events make the same rows.</summary>
    private async Task RewriteAsync(LakeFile file, CancellationToken cancellation)
    {
        var (events, _) = await _feed.ReadAsync(file.FirstSequence - 1, int.MaxValue, file.LastSequence, cancellation);
        await LoadDevicesAsync(events.Select(e => e.Device), cancellation);
        var rows = _builder.Build(events, _devices).Where(g => g.Dataset.Name == file.Dataset && g.Rows.Date == file.Date).Select(g => g.Rows).SingleOrDefault();
        if (rows?.Count != file.Rows)
            throw new InvalidOperationException($"Lake file {file.Path} is recorded with {file.Rows} rows but its events make {rows?.Count ?? 0}; rebuild the lake (depin lake rebuild --replace).");
        var dataset = LakeDatasets.All.Single(d => d.Name == file.Dataset);
        // Written in file order, as rounds and compaction write (a round's file from before rounds were sorted comes back
        // sorted). The digest is recorded before the file lands: should that fail, the next recovery writes the same
        // bytes again.
        var sha256 = ParquetFiles.Write(Path.Combine(Staging, file.Path), dataset.Schema, [FileOrder.InOrder(dataset.Schema, rows.ToRecordBatch())]);
        if (sha256 != file.Sha256) await manifest.RecordDigestAsync(file.Path, sha256, cancellation);
        Publish(file.Path);
    }

    private void Publish(string relativePath)
    {
        var target = Path.Combine(directory, relativePath);
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        File.Move(Path.Combine(Staging, relativePath), target, overwrite: true);
    }

    private async Task LoadDevicesAsync(IEnumerable<string> devices, CancellationToken cancellation)
    {
        var missing = devices.Where(d => !_devices.ContainsKey(d)).Distinct().ToList();
        if (missing.Count == 0) return;
        await using var session = store.Events.QuerySession();
        foreach (var device in await session.LoadManyAsync<Device>(cancellation, missing)) _devices[device.Id] = device;
    }
}
