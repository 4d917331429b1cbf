using Marten;
using Microsoft.Extensions.Logging;
using Npgsql;
using Pipeline.Infra.Stack;
using Pipeline.Streams.Registry;

namespace Pipeline.Projections.Lake;

/// <summary>Thrown when the checkpoint moved under a writer: another projector leads this lake now.</summary>
public sealed class LakeTakenOverException() : Exception("Another projector committed to this lake; this one stops writing.");

/// <summary>
/// Extends one lake: reads the next events, writes their rows as Parquet files into a staging folder, commits the files
/// and the new checkpoint together, then moves the files into place. Every step can die without harm: recovery moves
/// committed files still in staging into place, writes again committed files that never made it, and drops the rest.
/// </summary>
public sealed class LakeWriter(DevStack stack, LakeManifest manifest, string directory, LakeOptions options, LakeMetrics? metrics, ILogger logger)
{
    private readonly EventFeed _feed = new(stack);
    private readonly LakeBuilder _builder = new(options.LocationDecimals);
    private readonly Dictionary<string, Device> _devices = new(StringComparer.Ordinal);
    private readonly List<(string Path, DateTime RetiredAt)> _retired = [];
    private DateTime _lastCompaction = DateTime.MinValue;

    public string Directory => directory;
    private string Staging => Path.Combine(directory, ".staging");

    /// <summary>Projects the next events (up to <paramref name="until"/>); returns how many, 0 when caught up.</summary>
    public async Task<int> ProjectAsync(long? until, CancellationToken cancellation)
    {
        var checkpoint = await manifest.CheckpointAsync(cancellation);
        var (events, through) = await _feed.ReadAsync(checkpoint, options.MaxEventsPerRound, until, cancellation);
        if (through == checkpoint) return 0;

        await LoadDevicesAsync(events.Select(e => e.Device), cancellation);
        var files = new List<LakeFile>();
        foreach (var (dataset, rows) in _builder.Build(events, _devices))
        {
            var file = new LakeFile($"{dataset.Name}/date={rows.Date:yyyy-MM-dd}/part-{rows.FirstSequence}-{rows.LastSequence}.parquet", dataset.Name, rows.Date, rows.FirstSequence, rows.LastSequence, rows.Count, "");
            files.Add(file with { Sha256 = ParquetFiles.Write(Path.Combine(Staging, file.Path), dataset.Schema, [rows.ToRecordBatch()]) });
        }
        if (!await manifest.CommitAsync(checkpoint, through, files, [], cancellation))
        {
            foreach (var file in files) File.Delete(Path.Combine(Staging, file.Path));
            throw new LakeTakenOverException();
        }
        foreach (var file in files) Publish(file.Path);
        metrics?.Projected(files, events.Count > 0 ? events[^1] : null);
        return Math.Max(1, events.Count);
    }

    /// <summary>Finishes what a writer that died left behind; see the class summary.</summary>
    public async Task RecoverAsync(CancellationToken cancellation)
    {
        var committed = await manifest.FilesAsync(cancellation);
        foreach (var file in committed.Where(f => !File.Exists(Path.Combine(directory, f.Path))))
        {
            if (File.Exists(Path.Combine(Staging, file.Path)))
            {
                Publish(file.Path);
                continue;
            }
            await RewriteAsync(file, cancellation);
            logger.LogWarning("Rewrote lake file {Path}, committed but lost", file.Path);
        }
        if (System.IO.Directory.Exists(Staging)) System.IO.Directory.Delete(Staging, recursive: true);
        // Files on disk that the manifest does not name: compaction inputs whose deletion was cut short.
        var named = committed.Select(f => Path.GetFullPath(Path.Combine(directory, f.Path))).ToHashSet();
        foreach (var dataset in LakeDatasets.All)
        {
            var folder = Path.Combine(directory, dataset.Name);
            if (!System.IO.Directory.Exists(folder)) continue;
            foreach (var path in System.IO.Directory.EnumerateFiles(folder, "*.parquet", SearchOption.AllDirectories).Where(p => !named.Contains(Path.GetFullPath(p))))
                File.Delete(path);
        }
    }

    /// <summary>Merges a day's many small files into one, when due; the rows do not change, only how they are spread.</summary>
    public async Task CompactAsync(bool force, CancellationToken cancellation)
    {
        DeleteRetired(force);
        if (!force && DateTime.UtcNow - _lastCompaction < options.CompactionInterval) return;
        _lastCompaction = DateTime.UtcNow;
        var checkpoint = await manifest.CheckpointAsync(cancellation);
        var files = await manifest.FilesAsync(cancellation);
        foreach (var partition in files.Where(f => f.Rows < options.CompactBelowRows).GroupBy(f => (f.Dataset, f.Date)).Where(g => g.Count() >= options.CompactAtFiles))
        {
            var inputs = partition.OrderBy(f => f.FirstSequence).ToList();
            var dataset = LakeDatasets.All.Single(d => d.Name == partition.Key.Dataset);
            var batches = new List<Apache.Arrow.RecordBatch>();
            foreach (var input in inputs) batches.AddRange(await ParquetFiles.ReadAsync(Path.Combine(directory, input.Path)));
            var first = inputs.Min(f => f.FirstSequence);
            var last = inputs.Max(f => f.LastSequence);
            var merged = new LakeFile($"{dataset.Name}/date={partition.Key.Date:yyyy-MM-dd}/part-{first}-{last}.parquet", dataset.Name, partition.Key.Date, first, last, inputs.Sum(f => f.Rows), "");
            merged = merged with { Sha256 = ParquetFiles.Write(Path.Combine(Staging, merged.Path), dataset.Schema, batches) };
            if (!await manifest.CommitAsync(checkpoint, checkpoint, [merged], inputs, cancellation)) throw new LakeTakenOverException();
            Publish(merged.Path);
            // Queries that listed the old files a moment ago may still read them: they go a little later.
            _retired.AddRange(inputs.Select(f => (Path.Combine(directory, f.Path), DateTime.UtcNow)));
            logger.LogInformation("Compacted {Count} files of {Dataset} into {Path}", inputs.Count, dataset.Name, merged.Path);
        }
    }

    private void DeleteRetired(bool all)
    {
        var due = _retired.Where(r => all || DateTime.UtcNow - r.RetiredAt > TimeSpan.FromSeconds(30)).ToList();
        foreach (var (path, _) in due) File.Delete(path);
        _retired.RemoveAll(due.Contains);
    }

    /// <summary>Writes a committed file again from its events: the same events make the same rows.</summary>
    private async Task RewriteAsync(LakeFile file, CancellationToken cancellation)
    {
        var (events, _) = await _feed.ReadAsync(file.FirstSequence - 1, int.MaxValue, file.LastSequence, cancellation);
        await LoadDevicesAsync(events.Select(e => e.Device), cancellation);
        var (dataset, rows) = _builder.Build(events, _devices).Single(g => g.Dataset.Name == file.Dataset && g.Rows.Date == file.Date);
        ParquetFiles.Write(Path.Combine(directory, file.Path), dataset.Schema, [rows.ToRecordBatch()]);
    }

    private void Publish(string relativePath)
    {
        var target = Path.Combine(directory, relativePath);
        System.IO.Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        File.Move(Path.Combine(Staging, relativePath), target, overwrite: true);
    }

    private async Task LoadDevicesAsync(IEnumerable<string> devices, CancellationToken cancellation)
    {
        var missing = devices.Where(d => !_devices.ContainsKey(d)).Distinct().ToList();
        if (missing.Count == 0) return;
        await using var session = stack.Store.QuerySession();
        foreach (var device in await session.LoadManyAsync<Device>(cancellation, missing)) _devices[device.Id] = device;
    }
}
