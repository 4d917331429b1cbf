using Microsoft.Extensions.Logging;
using Pipeline.Infra.Kafka;
using Pipeline.Infra.Postgres;

namespace Pipeline.Infra.Development;

/// <summary>What the local servers start from: the data folder and the Postgres and Kafka sections as configured.</summary>
public sealed class DevServerOptions
{
    /// <summary>State: the PostgreSQL cluster, the lake, DuckDB files, keys. PIPELINE_DATA moves it.</summary>
    public string DataDirectory { get; set; } = ".data";

    public PostgresOptions Postgres { get; set; } = new();

    public KafkaOptions Kafka { get; set; } = new();

    /// <summary>Write the embedded broker's address to DataDirectory/kafka.bootstrap for other processes (depin up does).</summary>
    public bool PublishBootstrapFile { get; set; }

    /// <summary>With no brokers configured, join the embedded broker another process published in kafka.bootstrap, if it answers.</summary>
    public bool JoinPublishedBroker { get; set; }

    /// <summary>Start PostgreSQL when no server is configured; the ingest edge alone needs none.</summary>
    public bool WithPostgres { get; set; } = true;

    /// <summary>Start the embedded broker when none is configured; commands that only read the event store and the lake need no broker.</summary>
    public bool WithKafka { get; set; } = true;

    /// <summary>A local cluster found running was left by a killed owner: stop it with these servers as if started here.</summary>
    public bool AdoptRunningPostgres { get; set; }

    /// <summary>Start anvil when no chain is configured (the rewards stage publishes roots there).</summary>
    public bool WithChain { get; set; }

    /// <summary>The chain's JSON-RPC endpoint (Chain:RpcUrl, PIPELINE_CHAIN): used as is, nothing is started.</summary>
    public string? ChainRpcUrl { get; set; }

    /// <summary>The local anvil's port on 127.0.0.1 (Chain:Port, --chain-port); 0 picks a free one.</summary>
    public int ChainPort { get; set; } = 8545;

    /// <summary>With no chain configured, use one already listening on <see cref="ChainPort"/> (a running depin up's) before starting another.</summary>
    public bool JoinRunningChain { get; set; }

    /// <summary>Keep the local chain in DataDirectory/chain/anvil-state.json across restarts (depin up does; tests start fresh).</summary>
    public bool KeepChainState { get; set; }
}

/// <summary>
/// The local servers for development and tests, and nothing more: a PostgreSQL cluster under the data folder when no
/// server is configured, an embedded Kafka-protocol broker (with the pipeline's topics) when no brokers are, and the
/// configuration that points the pipeline at them (<see cref="Configuration"/>). No stage ever receives this type: the
/// host is composed from configuration alone, the same way whether these servers or real ones are behind it.
/// </summary>
public sealed class DevServers : IAsyncDisposable
{
    private readonly LocalPostgres? _localPostgres;
    private readonly string? _bootstrapFile;

    /// <summary>The configuration section of the chain, shared with the rewards stage that reads it.</summary>
    public const string ChainSection = "Chain";

    private DevServers(string dataDirectory, string? postgres, LocalPostgres? localPostgres, string? kafka, EmbeddedKafka? embeddedKafka, string? bootstrapFile)
    {
        DataDirectory = Path.GetFullPath(dataDirectory);
        PostgresConnectionString = postgres;
        _localPostgres = localPostgres;
        KafkaBootstrapServers = kafka;
        EmbeddedKafka = embeddedKafka;
        _bootstrapFile = bootstrapFile;
    }

    public string DataDirectory { get; }

    /// <summary>The configured server's, or the local cluster's; null when PostgreSQL was not asked for.</summary>
    public string? PostgresConnectionString { get; }

    /// <summary>The configured brokers, the published embedded broker's, or this process's embedded one; null when Kafka was not asked for.</summary>
    public string? KafkaBootstrapServers { get; }

    /// <summary>The in-process broker, or null when real or another process's brokers are used.</summary>
    public EmbeddedKafka? EmbeddedKafka { get; }

    /// <summary>The configured chain's or the local anvil's JSON-RPC endpoint; null when no chain was asked for.</summary>
    public string? ChainRpcUrl { get; private init; }

    /// <summary>The anvil these servers started, or null when a configured chain (or one already running) is used.</summary>
    public AnvilNode? Anvil { get; private init; }

    /// <summary>The chain is a local anvil: started here, or found on the port. Its well-known dev keys may be used.</summary>
    private bool LocalChain { get; init; }

    public bool UsesLocalPostgres => _localPostgres is not null;

    /// <summary>Where the local cluster's password is kept; null when the configured server is used.</summary>
    public string? LocalPostgresPasswordFile => _localPostgres?.PasswordFile;

    /// <summary>These servers started the local cluster (or adopted it) and stop it when disposed.</summary>
    public bool OwnsLocalPostgres => _localPostgres is { StartedHere: true };

    /// <summary>The configuration keys these servers fill: where PostgreSQL and Kafka are.</summary>
    public IEnumerable<KeyValuePair<string, string?>> Configuration
    {
        get
        {
            if (PostgresConnectionString is not null) yield return new($"{PostgresOptions.Section}:ConnectionString", PostgresConnectionString);
            if (ChainRpcUrl is not null) yield return new($"{ChainSection}:RpcUrl", ChainRpcUrl);
            if (LocalChain) yield return new($"{ChainSection}:Local", "true");
            if (KafkaBootstrapServers is null) yield break;
            yield return new($"{KafkaOptions.Section}:BootstrapServers", KafkaBootstrapServers);
            if (Embedded) yield return new($"{KafkaOptions.Section}:Embedded", "true");
        }
    }

    private bool Embedded { get; init; }

    public static async Task<DevServers> StartAsync(DevServerOptions options, ILogger logger, CancellationToken cancellation)
    {
        Directory.CreateDirectory(options.DataDirectory);
        string? postgres = null;
        LocalPostgres? local = null;
        if (options.WithPostgres)
            (postgres, local) = await LocalPostgres.EnsureAsync(options.Postgres, Path.Combine(options.DataDirectory, "postgres"), logger, cancellation, options.AdoptRunningPostgres);

        EmbeddedKafka? embedded = null;
        AnvilNode? anvil = null;
        string? localChain = null;
        string? bootstrapFile = null;
        string? bootstrap = null;
        var joined = false;
        try
        {
            if (options.WithChain && string.IsNullOrWhiteSpace(options.ChainRpcUrl))
            {
                if (options.JoinRunningChain && options.ChainPort > 0 && await ListensAsync("127.0.0.1", options.ChainPort))
                {
                    localChain = $"http://127.0.0.1:{options.ChainPort}";
                    // Our own chain left running by a killed host is taken over, to be stopped with this one.
                    anvil = options.KeepChainState ? AnvilNode.FindRunning(options.ChainPort, ChainStateFile(options)) : null;
                    if (anvil is not null) logger.LogWarning("Adopted the anvil left running on {RpcUrl} by a process that was killed; it stops when this one does", localChain);
                    else logger.LogInformation("Joining the chain already running at {RpcUrl}", localChain);
                }
                else
                {
                    anvil = await StartAnvilAsync(options, logger, cancellation);
                    localChain = anvil.RpcUrl;
                }
            }
            if (options.WithKafka)
            {
                bootstrap = options.Kafka.BootstrapServers;
                if (string.IsNullOrWhiteSpace(bootstrap) && options.JoinPublishedBroker && await PublishedBrokerAsync(options.DataDirectory) is { } published)
                {
                    bootstrap = published;
                    joined = true;
                    logger.LogInformation("Joining the embedded broker published in kafka.bootstrap: {Bootstrap}", bootstrap);
                }
                else if (string.IsNullOrWhiteSpace(bootstrap))
                {
                    embedded = EmbeddedKafka.Start(options.Kafka.EmbeddedBrokers);
                    bootstrap = embedded.BootstrapServers;
                    logger.LogInformation("Embedded Kafka broker ({Brokers} brokers) at {Bootstrap}", embedded.Brokers, bootstrap);
                    // The mock cluster has no CreateTopics: its topics are made here, through its native API.
                    foreach (var topic in new[] { options.Kafka.RawTopic, options.Kafka.RejectedTopic }) embedded.CreateTopic(topic, options.Kafka.Partitions);
                }
            }
            if (embedded is not null && options.PublishBootstrapFile)
            {
                // Only once the topics exist, and whole: a process joining reads either nothing or a broker ready to use.
                bootstrapFile = Path.Combine(options.DataDirectory, "kafka.bootstrap");
                await File.WriteAllTextAsync(bootstrapFile + ".tmp", bootstrap + "\n", cancellation);
                File.Move(bootstrapFile + ".tmp", bootstrapFile, overwrite: true);
            }
        }
        catch
        {
            // A start that fails half-way leaves nothing running behind it.
            if (bootstrapFile is not null) File.Delete(bootstrapFile);
            embedded?.Dispose();
            if (anvil is not null) await anvil.DisposeAsync();
            if (local is not null) await local.StopAsync();
            throw;
        }
        return new DevServers(options.DataDirectory, postgres, local, bootstrap, embedded, bootstrapFile)
        {
            Embedded = embedded is not null || joined,
            Anvil = anvil,
            LocalChain = localChain is not null,
            ChainRpcUrl = localChain ?? (options.WithChain && !string.IsNullOrWhiteSpace(options.ChainRpcUrl) ? options.ChainRpcUrl : null),
        };
    }

    private static string ChainStateFile(DevServerOptions options) => Path.Combine(Path.GetFullPath(options.DataDirectory), "chain", "anvil-state.json");

    /// <summary>anvil from infra/tools on the configured port; with <see cref="DevServerOptions.KeepChainState"/> its chain survives restarts.</summary>
    private static async Task<AnvilNode> StartAnvilAsync(DevServerOptions options, ILogger logger, CancellationToken cancellation)
    {
        string? stateFile = null;
        var blockTime = 0;
        if (options.KeepChainState)
        {
            // The dev stack's chain mines every second: confirmations (of payments, of roots) then come as on a real
            // chain instead of waiting for someone else's transaction.
            blockTime = 1;
            stateFile = ChainStateFile(options);
            Directory.CreateDirectory(Path.GetDirectoryName(stateFile)!);
        }
        try
        {
            var anvil = await AnvilNode.StartAsync(new AnvilOptions(AnvilNode.FindExecutable(), options.ChainPort, stateFile, blockTime), cancellation);
            logger.LogInformation("anvil (local chain) at {RpcUrl}", anvil.RpcUrl);
            return anvil;
        }
        catch (Exception e) when (e is InvalidOperationException or FileNotFoundException or TimeoutException)
        {
            throw new InvalidOperationException(
                $"anvil did not start on 127.0.0.1:{options.ChainPort} ({e.Message.Split('\n')[0]}): if the port is in use, move the chain with --chain-port (PIPELINE_CHAIN_PORT), or name a running chain with PIPELINE_CHAIN.", e);
        }
    }

    /// <summary>Topics of their own (for tests and benchmarks): through the embedded broker's native API, or CreateTopics on real brokers.</summary>
    public async Task CreateTopicsAsync(int partitions, params string[] topics)
    {
        if (EmbeddedKafka is not null)
        {
            foreach (var topic in topics) EmbeddedKafka.CreateTopic(topic, partitions);
            return;
        }
        await KafkaTopics.EnsureAsync(KafkaBootstrapServers ?? throw new InvalidOperationException("These servers run without Kafka."), partitions, topics);
    }

    private static async Task<string?> PublishedBrokerAsync(string dataDirectory)
    {
        var file = Path.Combine(dataDirectory, "kafka.bootstrap");
        if (!File.Exists(file)) return null;
        var bootstrap = (await File.ReadAllTextAsync(file)).Trim();
        var first = bootstrap.Split(',')[0];
        var colon = first.LastIndexOf(':');
        if (colon < 0 || !int.TryParse(first[(colon + 1)..], out var port)) return null;
        // A file left by a process that was killed names a port nobody listens on.
        return await ListensAsync(first[..colon], port) ? bootstrap : null;
    }

    private static async Task<bool> ListensAsync(string host, int port)
    {
        try
        {
            using var probe = new System.Net.Sockets.TcpClient();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await probe.ConnectAsync(host, port, timeout.Token);
            return true;
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or OperationCanceledException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_bootstrapFile is not null) File.Delete(_bootstrapFile);
        EmbeddedKafka?.Dispose();
        if (Anvil is not null) await Anvil.DisposeAsync();
        if (_localPostgres is not null) await _localPostgres.StopAsync();
    }
}
