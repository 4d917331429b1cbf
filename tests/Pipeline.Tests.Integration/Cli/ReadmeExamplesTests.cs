using System.Text;
using System.Text.Json;
using Confluent.Kafka;
using Marten;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Pipeline.Core.Envelope;
using Pipeline.Core.Kafka;
using Pipeline.Infra.Kafka;
using Pipeline.Infra.Development;
using Pipeline.Infra.Postgres;
using Pipeline.Tests.Integration.Streams;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Cli;

/// <summary>
/// The first hour of a new user (issue 11): `./depin up` as a process, then every marked shell block of the README as
/// written — from a fresh key to a row in the lake, and the simulator beside up's own fleet — each checked for the
/// output it promises; finally the pipeline's verdict on every simulated reading against the simulators' ledgers.
/// </summary>
[Trait("Category", "Integration")]
public sealed class ReadmeExamplesTests
{
    private static readonly string[] SignedRejections = ["seq_conflict", "out_of_range", "stale", "future", "teleport", "unsupported_pid", "unknown_signal"];

    [Fact]
    public async Task ReadmeExamples_AsWritten_AgainstDepinUp_PrintWhatTheyPromise_AndEveryRejectionIsOneALedgerOwes()
    {
        await using var folder = new DepinUp();
        LinkRepository(folder.Folder);
        var up = folder.Start(Path.Combine(folder.Folder, "depin"), ["up"]);
        await folder.WaitUntilHealthyAsync(up);

        var shell = new ReadmeShell(folder);
        var ledgers = new List<Dictionary<string, JsonElement>>();
        foreach (var example in ReadmeExample.All(await File.ReadAllTextAsync(Path.Combine(RepositoryTools.Root, "README.md"))))
        {
            await shell.RunAsync(example);
            ledgers.AddRange(shell.NewLedgerEntries());
        }
        Assert.NotEmpty(ledgers);

        await using var stack = await ObserveAsync(folder);
        await WaitForProcessorsAsync(stack);
        var rejections = DeadLetters(stack.KafkaBootstrapServers);
        var accepted = (await PipelineProbe.AcceptedAsync(stack)).Select(a => a.ReadingId).ToHashSet();
        var signedRejections = (await PipelineProbe.RejectedAsync(stack)).Select(r => (ReadingId: (string?)r.Event.ReadingId, Reason: (string?)r.Event.Reason)).ToList();

        // Every reading a ledger holds got what it was owed: at the edge, then from the processors.
        foreach (var entry in ledgers)
        {
            var (id, expected, edge) = (entry["readingId"].GetString(), entry["expected"].GetString()!, entry["edge"].GetString()!);
            if (edge is not ("accepted" or "duplicate"))
            {
                Assert.Equal($"refused:{expected}", edge);
                continue;
            }
            // The edge answers a copy of what the broker already has "duplicate" and does not produce it again.
            if (edge == "duplicate") Assert.Equal("duplicate", expected);
            if (expected is "accepted" or "duplicate") Assert.Contains(id!, accepted);
            else Assert.Contains((id, expected), rejections.Where(r => r.Source.StartsWith(Topics.Raw, StringComparison.Ordinal)).Select(r => (r.ReadingId, r.Reason)));
        }

        // Every rejection of the processors is one a ledger owes: none for up's own fleet or the README's device.
        var owed = ledgers.Where(e => e["edge"].GetString() == "accepted").Select(e => (e["readingId"].GetString(), e["expected"].GetString())).ToHashSet();
        Assert.All(rejections.Where(r => r.Source.StartsWith(Topics.Raw, StringComparison.Ordinal)), r => Assert.Contains((r.ReadingId, r.Reason), owed));
        Assert.All(signedRejections, r => Assert.Contains(r, owed));
        Assert.All(signedRejections, r => Assert.Contains(r.Reason, SignedRejections));
        // The edge dead-letters what MQTT clients send malformed: exactly the ledgers' malformed MQTT readings.
        Assert.Equal(ledgers.Count(e => e["expected"].GetString() == "malformed" && e["transport"].GetString() == "mqtt"),
            rejections.Count(r => r.Source.StartsWith("mqtt:", StringComparison.Ordinal) && r.Reason == "malformed"));

        // Ctrl-C (SIGTERM) stops it cleanly; its panel never showed the cluster's password.
        var exitCode = await up.StopAsync();
        Assert.True(exitCode == 0, $"depin up ended with {exitCode}:\n{up.Output}");
        var password = (await File.ReadAllTextAsync(Path.Combine(folder.DataDirectory, "postgres.password"))).Trim();
        // The panel wraps its cells to the width of the output: read it without borders and line breaks.
        var panel = string.Concat(up.Output.Where(c => !char.IsWhiteSpace(c) && c != '│'));
        Assert.Contains("Password=***", panel);
        Assert.DoesNotContain(password, panel);
    }

    /// <summary>
    /// The working folder a user has, as links into the repository (`./depin`, `infra/tools`, `simulator`), with
    /// `.data` of its own: the README's relative paths hold there.
    /// </summary>
    private static void LinkRepository(string folder)
    {
        File.CreateSymbolicLink(Path.Combine(folder, "depin"), Path.Combine(RepositoryTools.Root, "depin"));
        File.CreateSymbolicLink(Path.Combine(folder, "infra"), Path.Combine(RepositoryTools.Root, "infra"));
        File.CreateSymbolicLink(Path.Combine(folder, "simulator"), Path.Combine(RepositoryTools.Root, "simulator"));
    }

    /// <summary>The servers of that up, opened as any other process would (owning nothing): its cluster and its published broker.</summary>
    private static async Task<ObservedPipeline> ObserveAsync(DepinUp folder)
    {
        var local = new LocalPostgres(new PostgresOptions { Port = folder.PostgresPort }, Path.Combine(folder.DataDirectory, "postgres"), NullLogger.Instance);
        var kafka = (await File.ReadAllTextAsync(Path.Combine(folder.DataDirectory, "kafka.bootstrap"))).Trim();
        var configuration = new ConfigurationBuilder().AddInMemoryCollection([new("Postgres:ConnectionString", local.ConnectionString)]).Build();
        return new ObservedPipeline(local.ConnectionString, kafka, await EventStoreScope.StartAsync(configuration));
    }

    private sealed class ObservedPipeline(string postgres, string kafka, EventStoreScope scope) : IPipelineView, IAsyncDisposable
    {
        public string PostgresConnectionString => postgres;
        public string KafkaBootstrapServers => kafka;
        public IDocumentStore Store => scope.Store;

        public ValueTask DisposeAsync() => scope.DisposeAsync();
    }

    /// <summary>
    /// Waits until the processors have stored offsets past everything on the raw topic now (up's fleet keeps sending, so
    /// the ends are taken once) and the relay has written every dead letter recorded by then.
    /// </summary>
    private static async Task WaitForProcessorsAsync(IPipelineView stack)
    {
        using var consumer = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig { BootstrapServers = stack.KafkaBootstrapServers, GroupId = "readme-probe" }).Build();
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = stack.KafkaBootstrapServers }).Build();
        var ends = admin.GetMetadata(Topics.Raw, TimeSpan.FromSeconds(10)).Topics.Single().Partitions
            .ToDictionary(p => p.PartitionId, p => consumer.QueryWatermarkOffsets(new TopicPartition(Topics.Raw, p.PartitionId), TimeSpan.FromSeconds(5)).High.Value);
        var schema = stack.Schema;
        var deadline = DateTime.UtcNow + TimeSpan.FromMinutes(2);
        while (true)
        {
            await using var connection = new NpgsqlConnection(stack.PostgresConnectionString);
            await connection.OpenAsync();
            var offsets = new Dictionary<int, long>();
            await using (var command = new NpgsqlCommand($"SELECT partition, next_offset FROM {schema}.consumer_offsets WHERE broker = $1 AND group_id = 'depin-streams' AND topic = $2", connection) { Parameters = { new() { Value = stack.BrokerIdentity }, new() { Value = Topics.Raw } } })
            await using (var reader = await command.ExecuteReaderAsync())
            {
                while (await reader.ReadAsync()) offsets[reader.GetInt32(0)] = reader.GetInt64(1);
            }
            await using var pending = new NpgsqlCommand($"SELECT count(*) FROM {schema}.dead_letters WHERE NOT written", connection);
            if (ends.All(e => e.Value == 0 || offsets.GetValueOrDefault(e.Key) >= e.Value) && (long)(await pending.ExecuteScalarAsync())! == 0) return;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"The processors did not catch up: ends {string.Join(",", ends)}, offsets {string.Join(",", offsets)}.");
            await Task.Delay(250);
        }
    }

    private sealed record DeadLetter(string Reason, string Source, string? ReadingId);

    /// <summary>Everything on the dead-letter topic, from the beginning of every partition to its end now.</summary>
    private static List<DeadLetter> DeadLetters(string bootstrap)
    {
        var config = new KafkaOptions { BootstrapServers = bootstrap }.ConsumerConfig("readme-" + Guid.NewGuid().ToString("N"), "readme-test");
        config.EnablePartitionEof = true;
        using var consumer = new ConsumerBuilder<string, byte[]>(config).Build();
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = bootstrap }).Build();
        var partitions = admin.GetMetadata(Topics.Rejected, TimeSpan.FromSeconds(10)).Topics.Single().Partitions.Select(p => p.PartitionId).ToList();
        consumer.Assign(partitions.Select(p => new TopicPartitionOffset(Topics.Rejected, p, Offset.Beginning)));
        var letters = new List<DeadLetter>();
        var ended = new HashSet<int>();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (ended.Count < partitions.Count && DateTime.UtcNow < deadline)
        {
            var result = consumer.Consume(TimeSpan.FromMilliseconds(200));
            if (result is null) continue;
            if (result.IsPartitionEOF)
            {
                ended.Add(result.Partition.Value);
                continue;
            }
            letters.Add(new DeadLetter(
                Encoding.UTF8.GetString(result.Message.Headers.GetLastBytes(HeaderNames.Reason)),
                Encoding.UTF8.GetString(result.Message.Headers.GetLastBytes(HeaderNames.Source)),
                EnvelopeParser.Parse(result.Message.Value, EnvelopeLimits.Default).Reading?.Id));
        }
        Assert.Equal(partitions.Count, ended.Count);
        return letters;
    }

    /// <summary>
    /// Runs README blocks one after another the way a person pastes them into one terminal: in the working folder,
    /// with the variables earlier blocks set, under `set -euo pipefail`. The only change to the text: the default
    /// ports become the ports this test's up listens on, so it can run beside another up.
    /// </summary>
    private sealed class ReadmeShell(DepinUp folder)
    {
        private static readonly TimeSpan BlockTimeout = TimeSpan.FromMinutes(3);
        private static readonly TimeSpan EventuallyWithin = TimeSpan.FromSeconds(60);
        private readonly string _state = Path.Combine(folder.Folder, ".readme-shell-state");
        private readonly Dictionary<string, DateTime> _ledgersSeen = [];

        public async Task RunAsync(ReadmeExample example)
        {
            var deadline = DateTime.UtcNow + EventuallyWithin;
            while (true)
            {
                var (exitCode, output) = await RunScriptAsync(example.Script);
                var missing = example.Missing(output);
                if (exitCode == 0 && missing.Count == 0) return;
                if (!example.Eventually || DateTime.UtcNow > deadline)
                    Assert.Fail($"README line {example.Line}: exit code {exitCode}; missing output {string.Join(" | ", missing)}\n--- script\n{Ported(example.Script)}\n--- output\n{output}");
                await Task.Delay(1000);
            }
        }

        /// <summary>Each ledger written (or rewritten) since the last look, read whole: one run's readings.</summary>
        public IEnumerable<Dictionary<string, JsonElement>> NewLedgerEntries()
        {
            var simulator = Path.Combine(folder.DataDirectory, "simulator");
            if (!Directory.Exists(simulator)) yield break;
            foreach (var ledger in Directory.GetFiles(simulator, "ledger-*.ndjson"))
            {
                var written = File.GetLastWriteTimeUtc(ledger);
                if (_ledgersSeen.TryGetValue(ledger, out var seen) && seen == written) continue;
                _ledgersSeen[ledger] = written;
                foreach (var line in File.ReadLines(ledger).Where(l => l.Length > 0))
                    yield return JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(line)!;
            }
        }

        private string Ported(string script) => script
            .Replace("127.0.0.1:5080", $"127.0.0.1:{folder.ApiPort}", StringComparison.Ordinal)
            .Replace("127.0.0.1:5081", $"127.0.0.1:{folder.IngestPort}", StringComparison.Ordinal)
            .Replace("-p 1883 ", $"-p {folder.MqttPort} ", StringComparison.Ordinal);

        private async Task<(int ExitCode, string Output)> RunScriptAsync(string script)
        {
            // Bash's own variables are left out of the saved state: most are read-only or change by themselves.
            var wrapped = $$"""
                set -euo pipefail
                if [ -f '{{_state}}' ]; then source '{{_state}}'; fi
                {{Ported(script)}}
                declare -p $(compgen -v | grep -Ev '^(BASH.*|EUID|PPID|SHELLOPTS|UID|FUNCNAME|GROUPS|RANDOM|SRANDOM|SECONDS|LINENO|PIPESTATUS|HISTCMD|DIRSTACK|OPTIND|OPTARG|OPTERR|_|PWD|OLDPWD|SHLVL|EPOCHREALTIME|EPOCHSECONDS|COLUMNS|LINES|IFS|PS4|HOSTNAME|HOSTTYPE|MACHTYPE|OSTYPE|COMP_WORDBREAKS)$') > '{{_state}}'
                """;
            var run = folder.Start("bash", ["-c", wrapped]);
            await run.WaitForExitAsync(BlockTimeout);
            return (run.ExitCode, run.Output);
        }
    }
}
