using System.Collections.Concurrent;
using System.Diagnostics;
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
/// which every row of the grant was handed over. Batches wait in a bounded buffer; a subscriber whose buffer stays full
/// longer than Marketplace:FeedDropAfter is dropped (<see cref="Dropped"/>) rather than holding the reader, and its
/// connection is closed.
/// </summary>
public sealed class FeedSubscription(string dataset, TableShape shape, string condition, long position, int buffer)
{
    private readonly CancellationTokenSource _dropped = new();
    private volatile string _condition = condition;

    public string Dataset => dataset;
    public TableShape Shape => shape;

    /// <summary>The grant's rows; a make's grant changes it when the make's devices do, and the next round reads it.</summary>
    public string Condition
    {
        get => _condition;
        set => _condition = value;
    }

    public long Position { get; internal set; } = position;

    /// <summary>When its buffer was first found full (a Stopwatch timestamp), while it stays full.</summary>
    internal long? FullSince { get; set; }
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
/// for a subscriber: one whose buffer is full gets the rest in a later round, and is dropped when it stays full. It
/// polls the manifest only while a feed is open.
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

    /// <summary>One round: new rows to every subscriber behind the checkpoint. True when it moved someone on and someone is still behind (read again at once).</summary>
    private async Task<bool> StepAsync(DuckDBConnection duck, CancellationToken cancellation)
    {
        var snapshot = await lake.SnapshotAsync(cancellation);
        var progress = false;
        var behind = _subscribers.Keys.Where(s => s.Position < snapshot.Checkpoint && !s.Dropped.IsCancellationRequested).ToList();
        // A subscriber with a full buffer sits this round out, so the round reads from the slowest of the others.
        foreach (var full in behind.Where(s => Room(s) == 0)) DropIfStuck(full);
        foreach (var group in behind.Where(s => Room(s) > 0).GroupBy(s => s.Dataset))
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
                if (count == _options.FeedStepRows) through = Scalar(duck, "SELECT max(event_seq) FROM step");
                foreach (var subscriber in group) progress |= await HandAsync(duck, subscriber, snapshot.Checkpoint, through, cancellation);
            }
            else
            {
                foreach (var subscriber in group) subscriber.Position = through;
            }
        }
        // Read again at once only while someone is behind and the last round moved someone on (a full buffer waits a poll).
        return progress && _subscribers.Keys.Any(s => s.Position < snapshot.Checkpoint);
    }

    /// <summary>
    /// Hands the subscriber its rows of the step up to <paramref name="through"/>, as many as its buffer has room for; the
    /// rest waits for a later round. True: it moved on.
    /// </summary>
    private async Task<bool> HandAsync(DuckDBConnection duck, FeedSubscription subscriber, long checkpoint, long through, CancellationToken cancellation)
    {
        subscriber.FullSince = null;
        var room = Room(subscriber);
        var rows = await RowsAsync(duck, subscriber, through, room, cancellation);
        for (var start = 0; start < rows.Count; start += _options.FeedBatchRows)
            subscriber.Batches.Writer.TryWrite(new FeedBatch(checkpoint, rows.GetRange(start, Math.Min(_options.FeedBatchRows, rows.Count - start))));
        subscriber.Position = rows.Count == room ? rows[^1].EventSeq : through;
        return true;
    }

    /// <summary>Rows the subscriber's buffer has room for now (only this reader adds to it).</summary>
    private int Room(FeedSubscription subscriber) => (_options.FeedBufferBatches - subscriber.Batches.Reader.Count) * _options.FeedBatchRows;

    private void DropIfStuck(FeedSubscription subscriber)
    {
        subscriber.FullSince ??= Stopwatch.GetTimestamp();
        if (Stopwatch.GetElapsedTime(subscriber.FullSince.Value) <= _options.FeedDropAfter) return;
        logger.LogInformation("Dropped a live feed of {Dataset}: its {Batches} batches waited longer than {DropAfter}", subscriber.Dataset, _options.FeedBufferBatches, _options.FeedDropAfter);
        subscriber.Drop();
        Unsubscribe(subscriber);
    }

    /// <summary>The subscriber's next rows of the step (at most <paramref name="limit"/>), each as JSON with its device and epoch.</summary>
    private async Task<List<FeedRow>> RowsAsync(DuckDBConnection duck, FeedSubscription subscriber, long through, int limit, CancellationToken cancellation)
    {
        var shape = subscriber.Shape;
        using var command = duck.CreateCommand();
        command.CommandText = $"""
            SELECT * FROM step WHERE event_seq > {subscriber.Position} AND event_seq <= {through} AND {subscriber.Condition} ORDER BY event_seq LIMIT {limit}
            """;
        var rows = new List<FeedRow>();
        using var batches = command.ExecuteArrowStream();
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
        return rows;
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
