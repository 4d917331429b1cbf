using System.Text;
using Confluent.Kafka;
using System.Numerics;
using Marten;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Pipeline.Cli.Commands;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Core.Events;
using Pipeline.Core.Kafka;
using Pipeline.Infra.Kafka;
using Pipeline.Infra.Postgres;
using Pipeline.Projections.Lake;
using Pipeline.Rewards;
using Pipeline.Rewards.Epochs;
using Pipeline.Rewards.Stage;
using Pipeline.Simulator;

namespace Pipeline.Cli.Chaos;

/// <summary>
/// The end of a chaos run: waits until the stages have drained (explicit conditions, not time), then holds the store,
/// the dead-letter topic and the lake against the fleet's ledger, adding each check to the report.
/// </summary>
public sealed class ChaosChecks(IConfiguration configuration, string dataDirectory, string postgres, KafkaOptions kafka, TimeSpan epochLength, ChaosReport report)
{
    private const string ProcessorGroup = "depin-streams";
    private static readonly TimeSpan DrainPatience = TimeSpan.FromMinutes(5);

    /// <summary>Rejections that do not depend on what else arrived or when: an acknowledged reading expecting one must have its dead letter.</summary>
    private static readonly string[] FixedRejections = ["bad_signature", "signer_mismatch", "unknown_device", "out_of_range"];

    private const string RefusedPrefix = "refused:";

    private readonly string _schema = configuration.GetSection(EventStoreOptions.Section).Get<EventStoreOptions>()?.Schema ?? EventStoreOptions.DefaultSchema;

    private IConfiguration Configuration => new ConfigurationBuilder().AddConfiguration(configuration).AddInMemoryCollection(new Dictionary<string, string?>
    {
        ["Postgres:ConnectionString"] = postgres,
        ["Data:Directory"] = dataDirectory,
    }).Build();

    /// <summary>Until the processors' offsets reach the end of every raw partition with no dead letter pending, then until the lake's checkpoint reaches the store's last event.</summary>
    public async Task WaitForDrainAsync(CancellationToken cancellation)
    {
        var deadline = DateTime.UtcNow + DrainPatience;
        using var consumer = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig { BootstrapServers = kafka.BootstrapServers, GroupId = "chaos-probe" }).Build();
        await using var source = NpgsqlDataSource.Create(postgres);
        while (true)
        {
            var ends = Enumerable.Range(0, kafka.Partitions).ToDictionary(p => p, p => consumer.QueryWatermarkOffsets(new TopicPartition(kafka.RawTopic, p), TimeSpan.FromSeconds(10)).High.Value);
            var offsets = new Dictionary<int, long>();
            await using (var command = source.CreateCommand($"SELECT partition, next_offset FROM {_schema}.consumer_offsets WHERE broker = $1 AND group_id = $2 AND topic = $3"))
            {
                command.Parameters.Add(new() { Value = kafka.BrokerIdentity });
                command.Parameters.Add(new() { Value = ProcessorGroup });
                command.Parameters.Add(new() { Value = kafka.RawTopic });
                await using var reader = await command.ExecuteReaderAsync(cancellation);
                while (await reader.ReadAsync(cancellation)) offsets[reader.GetInt32(0)] = reader.GetInt64(1);
            }
            var pending = await ScalarAsync(source, $"SELECT count(*) FROM {_schema}.dead_letters WHERE NOT written", cancellation);
            if (pending == 0 && ends.All(e => offsets.GetValueOrDefault(e.Key) >= e.Value)) break;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"The processors did not drain within {DrainPatience.TotalMinutes:N0} min: topic ends {string.Join(", ", ends)}, offsets {string.Join(", ", offsets)}, dead letters pending {pending}.");
            await Task.Delay(250, cancellation);
        }

        var head = await ScalarAsync(source, $"SELECT coalesce(max(seq_id), 0) FROM {_schema}.mt_events", cancellation);
        await using var lake = await LakeCommand.LakeHost.StartAsync(Configuration, cancellation);
        var manifest = lake.Store.Manifest(LakeProjector.LiveLake);
        await manifest.EnsureSchemaAsync(cancellation);
        while (await manifest.CheckpointAsync(cancellation) < head)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"The lake did not reach the store's last event {head} (at {await manifest.CheckpointAsync(cancellation)}).");
            await Task.Delay(250, cancellation);
        }
    }

    /// <summary>With every stage stopped: lost and duplicated readings, dead letters exactly once, the lake against a rebuild.</summary>
    public async Task RunAsync(Ledger ledger, CancellationToken cancellation)
    {
        var entries = ledger.Entries;
        var acknowledged = entries.Where(e => e.Edge is "accepted" or "duplicate").ToList();
        report.ReadingsSent = entries.Count;
        report.ReadingsAcknowledged = acknowledged.Count;

        await using var lake = await LakeCommand.LakeHost.StartAsync(Configuration, cancellation);
        List<string> stored;
        await using (var session = lake.Events.QuerySession())
        {
            var events = await session.Events.QueryAllRawEvents().Where(e => e.EventTypeName == "reading_accepted.v1").ToListAsync(cancellation);
            stored = events.Select(e => ((ReadingAccepted)e.Data).ReadingId).ToList();
        }
        var storedIds = stored.ToHashSet();
        var owed = acknowledged.Where(e => e.Expected == "accepted").ToList();
        var lost = owed.Where(e => !storedIds.Contains(e.ReadingId!)).ToList();
        report.ReadingsChecked = owed.Count;
        report.Lost = lost.Count;
        report.Duplicated = stored.Count - storedIds.Count;
        report.Checks.Add(new("Acknowledged readings all stored", lost.Count == 0 && owed.Count > 0,
            owed.Count == 0 ? "no acknowledged reading to check" : $"{lost.Count} lost, e.g. {Some(lost.Select(e => $"{e.Device}#{e.Seq} ({e.Transport})"))}"));
        report.Checks.Add(new("No reading stored twice", report.Duplicated == 0,
            $"{report.Duplicated} duplicated: {Some(stored.GroupBy(id => id).Where(g => g.Count() > 1).Select(g => $"{g.Key} ×{g.Count()}"))}"));

        CheckDeadLetters(entries, acknowledged, await DeadLetterRowsAsync(cancellation));

        var options = configuration.GetSection(LakeOptions.Section).Get<LakeOptions>() ?? new();
        var (partitions, through, rebuilt) = await LakeRebuild.RunAsync(lake.Store, dataDirectory, options, NullLogger.Instance, null, cancellation);
        report.LakeRows = partitions.Sum(p => p.LiveRows);
        report.RebuiltRows = partitions.Sum(p => p.RebuiltRows);
        var differing = partitions.Where(p => !p.Equal).ToList();
        report.Checks.Add(new("Lake equal to a rebuild", differing.Count == 0 && report.LakeRows > 0,
            report.LakeRows == 0 ? "the lake is empty" : $"through event {through:N0}, differing partitions: {Some(differing.Select(p => $"{p.Dataset} {p.Date:yyyy-MM-dd} live {p.LiveRows} rows, rebuilt {p.RebuiltRows}"))}"));
        await CheckRewardsAsync(lake, rebuilt, cancellation);
        Directory.Delete(rebuilt, recursive: true);
    }

    /// <summary>
    /// Each epoch the rewards stage closed during the run equals a recomputation afterwards — inputs read again from the
    /// rebuilt lake as of the epoch's event, cumulative amounts carried from the recomputed epoch before — and nothing is
    /// paid twice: one calculation per epoch, at most one root on chain for it, and that root the recomputed one.
    /// </summary>
    private async Task CheckRewardsAsync(LakeCommand.LakeHost lake, string rebuilt, CancellationToken cancellation)
    {
        string[] types = [EventNames.All[typeof(EpochClosed)], EventNames.All[typeof(RewardsCalculated)], EventNames.All[typeof(RootPublished)]];
        List<object> events;
        await using (var session = lake.Events.QuerySession())
            events = [.. (await session.Events.QueryAllRawEvents().Where(e => e.EventTypeName.IsOneOf(types)).ToListAsync(cancellation)).Select(e => e.Data)];
        var closed = events.OfType<EpochClosed>().OrderBy(e => e.Epoch).ToList();
        var calculated = events.OfType<RewardsCalculated>().ToLookup(e => e.Epoch);
        var published = events.OfType<RootPublished>().ToLookup(e => e.Epoch);
        report.EpochsClosed = closed.Count;
        report.RootsPublished = published.Count;

        var policy = (configuration.GetSection(RewardsOptions.Section).Get<RewardsOptions>() ?? new()).LoadPolicy();
        var reader = new EpochInputsReader(lake.Events, lake.Store, NullLogger<EpochInputsReader>.Instance);
        var cumulative = new Dictionary<EthAddress, BigInteger>();
        var differing = new List<string>();
        var twice = new List<string>();
        foreach (var epoch in closed)
        {
            var inputs = await reader.ReadAsync(policy, epoch, epochLength, new LakeSource(LakeRebuild.RebuildLake, rebuilt), cancellation);
            var file = RewardFile.Create(policy, inputs, cumulative);
            var recorded = calculated[epoch.Epoch].ToList();
            if (recorded.Count != 1) twice.Add($"epoch {epoch.Epoch} calculated {recorded.Count} times");
            else if (recorded[0].ContentHash != file.ContentHash()) differing.Add($"epoch {epoch.Epoch}: recorded {recorded[0].ContentHash}, recomputed {file.ContentHash()}");
            var roots = published[epoch.Epoch].ToList();
            if (roots.Count > 1) twice.Add($"epoch {epoch.Epoch} published {roots.Count} times");
            else if (roots.Count == 1 && roots[0].MerkleRoot != file.MerkleRoot) differing.Add($"epoch {epoch.Epoch}: root on chain {roots[0].MerkleRoot}, recomputed {file.MerkleRoot}");
            cumulative = file.Rewards.Contributors.ToDictionary(c => c.Account, c => c.CumulativeAmount);
        }
        report.Checks.Add(new("Closed epochs equal to a recomputation", differing.Count == 0 && closed.Count > 0,
            closed.Count == 0 ? "the rewards stage closed no epoch" : $"{differing.Count} of {closed.Count} differ: {Some(differing)}"));
        report.Checks.Add(new("No epoch paid twice", twice.Count == 0, Some(twice)));
    }

    /// <summary>
    /// Every dead letter the processors recorded (one per raw offset) is on the topic exactly once, nothing else from the
    /// raw topic is; each MQTT publish the edge refused has exactly one dead letter from the edge; and each acknowledged
    /// reading that must fail a fixed check has its dead letter with that reason.
    /// </summary>
    private void CheckDeadLetters(IReadOnlyList<LedgerEntry> entries, List<LedgerEntry> acknowledged, HashSet<string> recorded)
    {
        var letters = ReadDeadLetters();
        report.DeadLetters = letters.Count;
        var fromRaw = letters.Where(l => l.Source.StartsWith(kafka.RawTopic + "/", StringComparison.Ordinal)).ToList();
        var repeated = fromRaw.GroupBy(l => l.Source).Where(g => g.Count() > 1).Select(g => $"{g.Key} ×{g.Count()}").ToList();
        var onTopic = fromRaw.Select(l => l.Source).ToHashSet();
        var missing = recorded.Except(onTopic).ToList();
        var unrecorded = onTopic.Except(recorded).ToList();
        report.Checks.Add(new("Each dead letter on the topic exactly once", repeated.Count == 0 && missing.Count == 0 && unrecorded.Count == 0,
            $"{repeated.Count} written more than once ({Some(repeated)}), {missing.Count} recorded but not written ({Some(missing)}), {unrecorded.Count} written but not recorded ({Some(unrecorded)})"));

        // MQTT has no response body for the reason, so the edge writes each refused publish to the topic itself, with the
        // device's topic in its source ("mqtt:<client>:devices/<address>/readings"); a malformed one names no reading,
        // so they are counted per device and reason against the refusals the fleet was told of.
        var refusedAtEdge = entries.Where(e => e.Transport == "mqtt" && e.Edge.StartsWith(RefusedPrefix, StringComparison.Ordinal))
            .CountBy(e => $"{e.Device} {e.Edge[RefusedPrefix.Length..]}").ToDictionary();
        var fromEdge = letters.Where(l => l.Source.StartsWith("mqtt:", StringComparison.Ordinal))
            .CountBy(l => $"{l.Source.Split('/')[^2]} {l.Reason}").ToDictionary();
        var differ = refusedAtEdge.Keys.Union(fromEdge.Keys)
            .Where(k => refusedAtEdge.GetValueOrDefault(k) != fromEdge.GetValueOrDefault(k))
            .Select(k => $"{k}: refused {refusedAtEdge.GetValueOrDefault(k)}, dead letters {fromEdge.GetValueOrDefault(k)}").ToList();
        report.Checks.Add(new("Each MQTT refusal dead-lettered once by the edge", differ.Count == 0 && refusedAtEdge.Count > 0,
            refusedAtEdge.Count == 0 ? "the edge refused no MQTT publish" : $"{differ.Count} device and reason pairs differ: {Some(differ)}"));

        var byReading = letters.Where(l => l.ReadingId is not null).ToLookup(l => l.ReadingId!);
        var owed = acknowledged.Where(e => FixedRejections.Contains(e.Expected)).ToList();
        var without = owed.Where(e => !byReading[e.ReadingId!].Any(l => l.Reason == e.Expected)).ToList();
        report.Checks.Add(new("Each refused reading dead-lettered with its reason", without.Count == 0 && owed.Count > 0,
            owed.Count == 0 ? "no acknowledged reading expected a refusal" : $"{without.Count} of {owed.Count} without, e.g. {Some(without.Select(e => $"{e.Device}#{e.Seq} {e.Expected}"))}"));
    }

    private async Task<HashSet<string>> DeadLetterRowsAsync(CancellationToken cancellation)
    {
        await using var source = NpgsqlDataSource.Create(postgres);
        await using var command = source.CreateCommand($"SELECT source_topic || '/' || source_partition || '/' || source_offset FROM {_schema}.dead_letters WHERE broker = $1");
        command.Parameters.Add(new() { Value = kafka.BrokerIdentity });
        var rows = new HashSet<string>();
        await using var reader = await command.ExecuteReaderAsync(cancellation);
        while (await reader.ReadAsync(cancellation)) rows.Add(reader.GetString(0));
        return rows;
    }

    private sealed record DeadLetter(string Source, string Reason, string? ReadingId);

    /// <summary>The whole dead-letter topic, from the start of every partition to its end.</summary>
    private List<DeadLetter> ReadDeadLetters()
    {
        using var consumer = new ConsumerBuilder<Ignore, byte[]>(new ConsumerConfig
        {
            BootstrapServers = kafka.BootstrapServers,
            GroupId = "chaos-check",
            EnablePartitionEof = true,
            EnableAutoCommit = false,
        }).Build();
        var partitions = Enumerable.Range(0, kafka.Partitions).Select(p => new TopicPartition(kafka.RejectedTopic, p)).ToList();
        var open = partitions.Where(p => consumer.QueryWatermarkOffsets(p, TimeSpan.FromSeconds(10)).High > 0).ToHashSet();
        consumer.Assign(open.Select(p => new TopicPartitionOffset(p, Offset.Beginning)));
        var letters = new List<DeadLetter>();
        while (open.Count > 0)
        {
            var result = consumer.Consume(TimeSpan.FromSeconds(30)) ?? throw new TimeoutException("The dead-letter topic stopped answering before its end.");
            if (result.IsPartitionEOF)
            {
                open.Remove(result.TopicPartition);
                continue;
            }
            var headers = result.Message.Headers;
            letters.Add(new DeadLetter(
                Encoding.UTF8.GetString(headers.GetLastBytes(HeaderNames.Source)),
                Encoding.UTF8.GetString(headers.GetLastBytes(HeaderNames.Reason)),
                EnvelopeParser.Parse(result.Message.Value, EnvelopeLimits.Default).Reading?.Id));
        }
        consumer.Close();
        return letters;
    }

    private static async Task<long> ScalarAsync(NpgsqlDataSource source, string sql, CancellationToken cancellation)
    {
        await using var command = source.CreateCommand(sql);
        return Convert.ToInt64(await command.ExecuteScalarAsync(cancellation), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>The first few, for a failure message.</summary>
    private static string Some(IEnumerable<string> items)
    {
        var list = items.Take(6).ToList();
        return list.Count == 0 ? "none" : string.Join(", ", list) + (items.Skip(6).Any() ? ", …" : "");
    }
}
