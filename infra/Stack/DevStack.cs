using Marten;
using Microsoft.Extensions.Logging;
using Pipeline.Infra.EventStore;
using Pipeline.Infra.Kafka;
using Pipeline.Infra.Postgres;

namespace Pipeline.Infra.Stack;

/// <summary>What the stack is started from: the data folder and the Postgres and Kafka options.</summary>
public sealed class StackOptions
{
    /// <summary>State: the PostgreSQL cluster, the lake, DuckDB files, keys. PIPELINE_DATA moves it.</summary>
    public string DataDirectory { get; set; } = ".data";

    public PostgresOptions Postgres { get; set; } = new();

    public KafkaOptions Kafka { get; set; } = new();

    /// <summary>Write the embedded broker's address to DataDirectory/kafka.bootstrap for other processes (depin up does).</summary>
    public bool PublishBootstrapFile { get; set; }

    /// <summary>With no brokers configured, join the embedded broker another process published in kafka.bootstrap, if it answers.</summary>
    public bool JoinPublishedBroker { get; set; }

    /// <summary>Start PostgreSQL and open the event store; the ingest edge alone needs neither.</summary>
    public bool WithEventStore { get; set; } = true;

    /// <summary>Connect to Kafka (or start the embedded broker); commands that only read the event store and the lake need no broker.</summary>
    public bool WithKafka { get; set; } = true;

    /// <summary>A local cluster found running was left by a killed owner: stop it with this stack as if started here.</summary>
    public bool AdoptRunningPostgres { get; set; }

    public string EventStoreSchema { get; set; } = EventStoreConfiguration.DefaultSchema;

    /// <summary>The stages' projections and documents: the host adds every stage's, so each process sees one schema.</summary>
    public Action<StoreOptions>? ConfigureStore { get; set; }
}

/// <summary>
/// The servers the pipeline runs on, brought up the one way that <c>depin up</c> and the integration tests share:
/// PostgreSQL (the configured server or a local cluster under the data folder), Kafka (the configured brokers or an
/// embedded one) with the pipeline's topics, and the event store's schema.
/// </summary>
public sealed class DevStack : IAsyncDisposable
{
    private readonly LocalPostgres? _localPostgres;
    private readonly string? _bootstrapFile;

    private DevStack(StackOptions options, string? postgres, LocalPostgres? localPostgres, string kafka, EmbeddedKafka? embeddedKafka, DocumentStore? store, string? bootstrapFile)
    {
        Options = options;
        _postgres = postgres;
        _localPostgres = localPostgres;
        KafkaBootstrapServers = kafka;
        EmbeddedKafka = embeddedKafka;
        _store = store;
        _bootstrapFile = bootstrapFile;
    }

    public StackOptions Options { get; }
    public string DataDirectory => Path.GetFullPath(Options.DataDirectory);
    public string PostgresConnectionString => _postgres ?? throw new InvalidOperationException("This process runs without the event store.");
    private readonly string? _postgres;
    public string KafkaBootstrapServers { get; }

    /// <summary>
    /// Which Kafka cluster this is, for state kept beside the events that names Kafka offsets: a digest of the bootstrap
    /// list as configured (order and case aside). An embedded broker starts empty each time on new random ports, so
    /// offsets recorded against an earlier one are never mistaken for its own. Not taken from live metadata, which
    /// leaves out brokers that are down: a rolling restart would otherwise look like a new cluster and replay the topic.
    /// </summary>
    public string BrokerIdentity { get; private init; } = "";

    /// <summary>The in-process broker, or null when real Kafka is configured.</summary>
    public EmbeddedKafka? EmbeddedKafka { get; }

    public DocumentStore Store => _store ?? throw new InvalidOperationException("This process runs without the event store.");
    private readonly DocumentStore? _store;

    public bool HasEventStore => _store is not null;

    public bool UsesLocalPostgres => _localPostgres is not null;

    /// <summary>Where the local cluster's password is kept; null when the configured server is used.</summary>
    public string? LocalPostgresPasswordFile => _localPostgres?.PasswordFile;

    /// <summary>This stack started the local cluster (or adopted it) and stops it when disposed.</summary>
    public bool OwnsLocalPostgres => _ownsServers && _localPostgres is { StartedHere: true };

    public static async Task<DevStack> StartAsync(StackOptions options, ILogger logger, CancellationToken cancellation)
    {
        Directory.CreateDirectory(options.DataDirectory);
        string? postgres = null;
        LocalPostgres? local = null;
        if (options.WithEventStore)
            (postgres, local) = await LocalPostgres.EnsureAsync(options.Postgres, Path.Combine(options.DataDirectory, "postgres"), logger, cancellation, options.AdoptRunningPostgres);

        EmbeddedKafka? embedded = null;
        string? bootstrapFile = null;
        DocumentStore? store = null;
        var bootstrap = options.Kafka.BootstrapServers;
        try
        {
            if (!options.WithKafka)
            {
                bootstrap = "";
            }
            else if (string.IsNullOrWhiteSpace(bootstrap) && options.JoinPublishedBroker && await PublishedBrokerAsync(options.DataDirectory) is { } published)
            {
                bootstrap = published;
                logger.LogInformation("Joining the embedded broker published in kafka.bootstrap: {Bootstrap}", bootstrap);
            }
            else if (string.IsNullOrWhiteSpace(bootstrap))
            {
                embedded = EmbeddedKafka.Start(options.Kafka.EmbeddedBrokers);
                bootstrap = embedded.BootstrapServers;
                logger.LogInformation("Embedded Kafka broker ({Brokers} brokers) at {Bootstrap}", embedded.Brokers, bootstrap);
            }
            if (options.WithKafka) await KafkaTopics.EnsureAsync(bootstrap, embedded, options.Kafka.Partitions, [options.Kafka.RawTopic, options.Kafka.RejectedTopic]);
            if (embedded is not null && options.PublishBootstrapFile)
            {
                // Only once the topics exist, and whole: a process joining reads either nothing or a broker ready to use.
                bootstrapFile = Path.Combine(options.DataDirectory, "kafka.bootstrap");
                await File.WriteAllTextAsync(bootstrapFile + ".tmp", bootstrap + "\n", cancellation);
                File.Move(bootstrapFile + ".tmp", bootstrapFile, overwrite: true);
            }

            if (postgres is not null)
            {
                store = EventStoreConfiguration.Create(postgres, options.EventStoreSchema, options.ConfigureStore);
                await EventStoreConfiguration.ApplySchemaAsync(store);
            }
        }
        catch
        {
            // A start that fails half-way leaves nothing running behind it.
            store?.Dispose();
            if (bootstrapFile is not null) File.Delete(bootstrapFile);
            embedded?.Dispose();
            if (local is not null) await local.StopAsync();
            throw;
        }
        return new DevStack(options, postgres, local, bootstrap, embedded, store, bootstrapFile) { BrokerIdentity = IdentifyBrokers(bootstrap) };
    }

    private static string IdentifyBrokers(string bootstrap)
    {
        var brokers = bootstrap.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(b => b.ToLowerInvariant()).Order(StringComparer.Ordinal);
        var digest = System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(string.Join(",", brokers)));
        return "kafka:" + Convert.ToHexStringLower(digest)[..16];
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

    /// <summary>
    /// The same servers with the event store in another schema (emptied first): for tests that need a store of their
    /// own, and for rebuilds beside the live schema. Disposing it disposes only that store.
    /// </summary>
    public async Task<DevStack> WithSchemaAsync(string schema)
    {
        await using (var connection = new Npgsql.NpgsqlConnection(PostgresConnectionString))
        {
            await connection.OpenAsync();
            await using var drop = new Npgsql.NpgsqlCommand($"DROP SCHEMA IF EXISTS \"{schema}\" CASCADE", connection);
            await drop.ExecuteNonQueryAsync();
        }
        var store = EventStoreConfiguration.Create(PostgresConnectionString, schema, Options.ConfigureStore);
        await EventStoreConfiguration.ApplySchemaAsync(store);
        return new DevStack(Options, _postgres, null, KafkaBootstrapServers, EmbeddedKafka, store, null) { _ownsServers = false, BrokerIdentity = BrokerIdentity };
    }

    private bool _ownsServers = true;

    public async ValueTask DisposeAsync()
    {
        _store?.Dispose();
        if (!_ownsServers) return;
        if (_bootstrapFile is not null) File.Delete(_bootstrapFile);
        EmbeddedKafka?.Dispose();
        if (_localPostgres is not null) await _localPostgres.StopAsync();
    }
}
