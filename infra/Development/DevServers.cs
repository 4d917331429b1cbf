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
        string? bootstrapFile = null;
        string? bootstrap = null;
        var joined = false;
        try
        {
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
            if (local is not null) await local.StopAsync();
            throw;
        }
        return new DevServers(options.DataDirectory, postgres, local, bootstrap, embedded, bootstrapFile) { Embedded = embedded is not null || joined };
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
        try
        {
            // A file left by a process that was killed names a port nobody listens on.
            using var probe = new System.Net.Sockets.TcpClient();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await probe.ConnectAsync(first[..colon], port, timeout.Token);
            return bootstrap;
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or OperationCanceledException)
        {
            return null;
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_bootstrapFile is not null) File.Delete(_bootstrapFile);
        EmbeddedKafka?.Dispose();
        if (_localPostgres is not null) await _localPostgres.StopAsync();
    }
}
