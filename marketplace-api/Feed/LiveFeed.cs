using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using System.Threading.Channels;
using DuckDB.NET.Data;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Pipeline.Marketplace.Catalog;
using Pipeline.Marketplace.Sandbox;

namespace Pipeline.Marketplace.Feed;

/// <summary>One row of a feed: its place in the event log, whose it is (device and epoch, for attribution) and its JSON.</summary>
public sealed record FeedRow(long EventSeq, string Device, long Epoch, string Json);

/// <summary>New rows of one subscriber's grant, read at a lake checkpoint, in event order.</summary>
public sealed record FeedBatch(long Checkpoint, IReadOnlyList<FeedRow> Rows);

/// <summary>
/// One open feed: the grant's rows (dataset and condition) after <see cref="Position"/>, an event sequence number below
/// which every row of the grant was handed over. Batches wait in a bounded buffer; a subscriber that lets it fill is
/// dropped (<see cref="Dropped"/>) rather than holding the reader, and its connection is closed.
/// </summary>
public sealed class FeedSubscription(string dataset, TableShape shape, string condition, long position, int buffer)
{
    private readonly CancellationTokenSource _dropped = new();

    public string Dataset => dataset;
    public TableShape Shape => shape;
    public string Condition => condition;
    public long Position { get; internal set; } = position;
    public Channel<FeedBatch> Batches { get; } = Channel.CreateBounded<FeedBatch>(new BoundedChannelOptions(buffer) { SingleReader = true, SingleWriter = true });

    /// <summary>Cancelled when the reader dropped this subscriber for not keeping up.</summary>
    public CancellationToken Dropped => _dropped.Token;

    internal void Drop()
    {
        Batches.Writer.TryComplete();
        _dropped.Cancel();
    }
}

/// <summary>
/// The one reader of the lake for every live feed of this process: each time the lake's checkpoint moves, it reads the
/// new rows of each dataset someone follows once (files past the slowest subscriber's position, rows up to the
/// checkpoint) into a DuckDB table, then hands every subscriber the rows of its grant from that table. It never waits
/// for a subscriber: one whose buffer is full is dropped. It polls the manifest only while a feed is open.
/// </summary>
public sealed class LiveFeed(MarketLake lake, IOptions<MarketplaceOptions> options, ILogger<LiveFeed> logger) : BackgroundService
{
    private readonly ConcurrentDictionary<FeedSubscription, byte> _subscribers = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly MarketplaceOptions _options = options.Value;

    public FeedSubscription Subscribe(string dataset, TableShape shape, string condition, long position)
    {
        var subscription = new FeedSubscription(dataset, shape, condition, position, _options.FeedBufferBatches);
        _subscribers.TryAdd(subscription, 0);
        _wake.Release();
        return subscription;
    }

    public void Unsubscribe(FeedSubscription subscription) => _subscribers.TryRemove(subscription, out _);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var duck = new DuckDBConnection("DataSource=:memory:");
        duck.Open();
        foreach (var setting in new[] { "SET TimeZone = 'UTC'", "SET threads = 1", $"SET memory_limit = '{_options.QueryMemoryLimitMegabytes}MB'" })
            Execute(duck, setting);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (_subscribers.IsEmpty)
                {
                    await _wake.WaitAsync(stoppingToken);
                    continue;
                }
                if (!await StepAsync(duck, stoppingToken)) await Task.Delay(_options.FeedPollInterval, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is DuckDBException or Npgsql.NpgsqlException or IOException)
            {
                logger.LogWarning("The live feed could not read the lake: {Message}; trying again", e.Message);
                await Task.Delay(_options.FeedPollInterval, stoppingToken);
            }
        }
    }

    /// <summary>One round: new rows to every subscriber behind the checkpoint. True when someone is still behind (read again at once).</summary>
    private async Task<bool> StepAsync(DuckDBConnection duck, CancellationToken cancellation)
    {
        var snapshot = await lake.SnapshotAsync(cancellation);
        var behind = false;
        foreach (var group in _subscribers.Keys.Where(s => s.Position < snapshot.Checkpoint && !s.Dropped.IsCancellationRequested).GroupBy(s => s.Dataset))
        {
            var from = group.Min(s => s.Position);
            var files = snapshot.Files.Where(f => f.Dataset == group.Key && f.LastSequence > from).Select(f => Path.Combine(snapshot.Directory, f.Path)).ToList();
            var through = snapshot.Checkpoint;
            if (files.Count > 0)
            {
                // The rows of (from, checkpoint], at most StepRows of them: a subscriber resuming far back catches up round by round.
                var count = Scalar(duck, $$"""
                    CREATE OR REPLACE TEMP TABLE step AS
                    SELECT * FROM read_parquet([{{string.Join(", ", files.Select(SqlSandbox.Literal))}}], hive_partitioning = true, hive_types = {'date': DATE})
                    WHERE event_seq > {{from}} AND event_seq <= {{through}} ORDER BY event_seq LIMIT {{_options.FeedStepRows}};
                    SELECT count(*) FROM step
                    """);
                if (count == _options.FeedStepRows)
                {
                    through = Scalar(duck, "SELECT max(event_seq) FROM step");
                    behind = true;
                }
                foreach (var subscriber in group) await HandAsync(duck, subscriber, snapshot.Checkpoint, through, cancellation);
            }
            foreach (var subscriber in group) subscriber.Position = Math.Max(subscriber.Position, through);
        }
        return behind;
    }

    private async Task HandAsync(DuckDBConnection duck, FeedSubscription subscriber, long checkpoint, long through, CancellationToken cancellation)
    {
        var shape = subscriber.Shape;
        using var command = duck.CreateCommand();
        command.CommandText = $"""
            SELECT * FROM step WHERE event_seq > {subscriber.Position} AND event_seq <= {through} AND {subscriber.Condition} ORDER BY event_seq
            """;
        var rows = new List<FeedRow>();
        using (var batches = command.ExecuteArrowStream())
        {
            var schema = batches.Schema;
            var (device, time, sequence) = (schema.GetFieldIndex(shape.DeviceColumn), schema.GetFieldIndex(shape.TimeColumn), schema.GetFieldIndex(shape.SequenceColumn));
            var epochSeconds = (long)lake.EpochLength.TotalSeconds;
            var buffer = new MemoryStream();
            while (await batches.ReadNextRecordBatchAsync(cancellation) is { } batch)
            {
                using (batch)
                {
                    var devices = batch.Column(device);
                    var times = (Apache.Arrow.TimestampArray)batch.Column(time);
                    var sequences = (Apache.Arrow.Int64Array)batch.Column(sequence);
                    for (var i = 0; i < batch.Length; i++)
                    {
                        buffer.SetLength(0);
                        using (var json = new Utf8JsonWriter(buffer))
                        {
                            json.WriteStartObject();
                            for (var c = 0; c < batch.ColumnCount; c++)
                            {
                                json.WritePropertyName(schema.FieldsList[c].Name);
                                ResultWriter.WriteJson(json, batch.Column(c), i);
                            }
                            json.WriteEndObject();
                        }
                        var name = devices switch { Apache.Arrow.StringArray a => a.GetString(i), Apache.Arrow.StringViewArray a => a.GetString(i), _ => null } ?? "";
                        var seconds = times.GetTimestamp(i)!.Value.ToUnixTimeSeconds();
                        rows.Add(new FeedRow(sequences.GetValue(i)!.Value, name, DeliveredRows.EpochOf(seconds, epochSeconds),
                            System.Text.Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length)));
                    }
                }
            }
        }
        for (var start = 0; start < rows.Count; start += _options.FeedBatchRows)
        {
            if (subscriber.Batches.Writer.TryWrite(new FeedBatch(checkpoint, rows.GetRange(start, Math.Min(_options.FeedBatchRows, rows.Count - start))))) continue;
            logger.LogInformation("Dropped a live feed of {Dataset} that did not keep up ({Batches} batches waiting)", subscriber.Dataset, _options.FeedBufferBatches);
            subscriber.Drop();
            Unsubscribe(subscriber);
            return;
        }
    }

    private static void Execute(DuckDBConnection duck, string sql)
    {
        using var command = duck.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static long Scalar(DuckDBConnection duck, string sql)
    {
        using var command = duck.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(command.ExecuteScalar(), CultureInfo.InvariantCulture);
    }
}
