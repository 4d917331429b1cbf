using Marten;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Pipeline.Cli.Hosting;
using Pipeline.Infra.Development;
using Pipeline.Infra.Kafka;
using Pipeline.Infra.Postgres;
using Pipeline.Registry;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration;

/// <summary>
/// The servers every integration test uses, started once per run from the same settings `depin up` reads
/// (PIPELINE_POSTGRES, PIPELINE_KAFKA, PIPELINE_DATA, PIPELINE_Kafka__…): by default the local cluster under the
/// repository's .data and an embedded broker. Tests reach them only through configuration (<see cref="Settings"/>).
/// </summary>
public sealed class StackFixture : IAsyncLifetime
{
    private DevServers? _servers;

    public DevServers Servers => _servers ?? throw new InvalidOperationException("The servers are not started.");

    /// <summary>Configuration as `depin up` has it once the servers are up: where PostgreSQL and Kafka are, and the data folder.</summary>
    public IConfiguration Settings { get; private set; } = new ConfigurationBuilder().Build();

    public string PostgresConnectionString => Servers.PostgresConnectionString!;
    public string KafkaBootstrapServers => Servers.KafkaBootstrapServers!;

    /// <summary>The in-process broker, or null when PIPELINE_KAFKA names real brokers.</summary>
    public EmbeddedKafka? EmbeddedKafka => Servers.EmbeddedKafka;

    /// <summary>The Kafka section as configured (partitions, embedded brokers).</summary>
    public KafkaOptions Kafka { get; private set; } = new();

    public async Task InitializeAsync()
    {
        var configuration = PipelineConfiguration.Build([]);
        var options = PipelineConfiguration.DevServers(configuration);
        if (configuration["Data:Directory"] is null) options.DataDirectory = Path.Combine(RepositoryTools.Root, ".data");
        // A chain for the rewards stage every host with all roles runs: PIPELINE_CHAIN's, or an anvil of this run's own.
        options.WithChain = true;
        if (configuration["Chain:Port"] is null) options.ChainPort = 0;
        Kafka = options.Kafka;
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        _servers = await DevServers.StartAsync(options, NullLogger.Instance, timeout.Token);
        Settings = new ConfigurationBuilder()
            .AddConfiguration(PipelineConfiguration.With(configuration, _servers))
            .AddInMemoryCollection([new("Data:Directory", _servers.DataDirectory)])
            .Build();
    }

    public async Task DisposeAsync()
    {
        if (_servers is not null) await _servers.DisposeAsync();
    }

    /// <summary>A topic of its own for one test, with the given partitions.</summary>
    public async Task<string> CreateTopicAsync(string prefix, int partitions = 3)
    {
        var topic = $"test.{prefix}.{Guid.NewGuid():N}";
        await Servers.CreateTopicsAsync(partitions, topic);
        return topic;
    }

    /// <summary>Empties a schema: isolation per test class, reset before, never after.</summary>
    public async Task DropSchemaAsync(string schema)
    {
        await using var connection = new NpgsqlConnection(PostgresConnectionString);
        await connection.OpenAsync();
        await using var drop = new NpgsqlCommand($"DROP SCHEMA IF EXISTS \"{schema}\" CASCADE", connection);
        await drop.ExecuteNonQueryAsync();
    }

    /// <summary>The event store alone, composed from DI in a schema of its own (emptied first), with its schema applied.</summary>
    public async Task<EventStoreScope> CreateEventStoreAsync(string schema, ILoggerProvider? log = null)
    {
        await DropSchemaAsync(schema);
        return await EventStoreScope.StartAsync(new ConfigurationBuilder().AddConfiguration(Settings).AddInMemoryCollection([new("EventStore:Schema", schema)]).Build(), log);
    }
}

/// <summary>An event store composed as every process composes it (AddEventStore, the registry's documents), without a host.</summary>
public sealed class EventStoreScope(ServiceProvider services) : IAsyncDisposable
{
    public IDocumentStore Store { get; } = services.GetRequiredService<IDocumentStore>();

    public NpgsqlDataSource DataSource { get; } = services.GetRequiredService<NpgsqlDataSource>();

    public IServiceProvider Services => services;

    public static async Task<EventStoreScope> StartAsync(IConfiguration configuration, ILoggerProvider? log = null)
    {
        var services = new ServiceCollection().AddLogging(logging => { if (log is not null) logging.AddProvider(log); })
            .AddEventStore(configuration).AddRegistryDocuments().BuildServiceProvider(validateScopes: true);
        var scope = new EventStoreScope(services);
        await scope.Store.ApplySchemaAsync();
        return scope;
    }

    public ValueTask DisposeAsync() => services.DisposeAsync();
}

[CollectionDefinition(Name)]
public sealed class StackCollection : ICollectionFixture<StackFixture>
{
    public const string Name = "stack";
}
