using System.Net;
using System.Net.Sockets;
using Confluent.Kafka;
using Marten;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Npgsql;
using Pipeline.Cli.Hosting;
using Pipeline.Infra.Hosting;
using Pipeline.Infra.Kafka;
using Pipeline.Infra.Postgres;
using Pipeline.Ingest.Mqtt;
using Pipeline.Projections.Lake;
using Pipeline.Simulator;

namespace Pipeline.Tests.Integration;

/// <summary>What a probe needs to look at a running pipeline from outside: its servers, its event store and its schema.</summary>
public interface IPipelineView
{
    string PostgresConnectionString { get; }
    string KafkaBootstrapServers { get; }
    IDocumentStore Store { get; }
    string Schema => Store.Schema();

    /// <summary>Which broker the processors' offsets and dead letters are kept for.</summary>
    string BrokerIdentity => new KafkaOptions { BootstrapServers = KafkaBootstrapServers }.BrokerIdentity;
}

/// <summary>
/// The depin host (PipelineHost, as `depin up` composes it) with the given roles on free ports, configured with the
/// fixture's servers, with topics of its own so tests never see each other's messages, and its own event store schema
/// when one is asked for.
/// </summary>
public sealed class TestHost : IPipelineView, IAsyncDisposable
{
    private TestHost(WebApplication app, StackFixture fixture, string rawTopic, string rejectedTopic, int apiPort, int ingestPort)
    {
        App = app;
        Fixture = fixture;
        RawTopic = rawTopic;
        RejectedTopic = rejectedTopic;
        Api = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{apiPort}") };
        Ingest = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{ingestPort}") };
    }

    public WebApplication App { get; }
    public StackFixture Fixture { get; }
    public string RawTopic { get; }
    public string RejectedTopic { get; }
    public HttpClient Api { get; }
    public HttpClient Ingest { get; }
    public int MqttPort => App.Services.GetRequiredService<MqttGateway>().Port;

    public string PostgresConnectionString => Fixture.PostgresConnectionString;
    public string KafkaBootstrapServers => Fixture.KafkaBootstrapServers;
    public IDocumentStore Store => App.Services.GetRequiredService<IDocumentStore>();
    public string Schema => Store.Schema();
    public string BrokerIdentity => App.Services.GetRequiredService<IOptions<KafkaOptions>>().Value.BrokerIdentity;
    public string DataDirectory => App.Services.GetRequiredService<IOptions<DataOptions>>().Value.FullPath;

    /// <summary>The lake's store as this host's projector has it (or would).</summary>
    public LakeStore Lake => Create<LakeStore>();

    /// <summary>A service of this host, or one made from its services (a second instance of a stage's worker, say).</summary>
    public T Create<T>() where T : notnull => ActivatorUtilities.GetServiceOrCreateInstance<T>(App.Services);

    private readonly List<string> _fleetStates = [];

    /// <summary>A simulated fleet aimed at this host, keeping its keys in a temporary folder that goes with the host, quietly.</summary>
    public SimulatorOptions Fleet(SimulatorOptions fleet)
    {
        var state = Directory.CreateTempSubdirectory("depin-sim-").FullName;
        _fleetStates.Add(state);
        return fleet with
        {
            ApiUrl = Api.BaseAddress!.ToString(),
            IngestUrl = Ingest.BaseAddress!.ToString(),
            MqttPort = MqttPort,
            StateDirectory = state,
            ShowProgress = false,
        };
    }

    public static async Task<TestHost> StartAsync(StackFixture fixture, Roles roles, IDictionary<string, string?>? settings = null, string? schema = null)
    {
        if (schema is not null) await fixture.DropSchemaAsync(schema);
        var rawTopic = await fixture.CreateTopicAsync("raw", partitions: 3);
        var rejectedTopic = await fixture.CreateTopicAsync("rejected", partitions: 3);
        var apiPort = FreePort();
        var ingestPort = FreePort();
        var values = new Dictionary<string, string?>
        {
            ["Endpoints:ApiPort"] = $"{apiPort}",
            ["Endpoints:IngestPort"] = $"{ingestPort}",
            ["Endpoints:MqttPort"] = "0",
            ["Kafka:RawTopic"] = rawTopic,
            ["Kafka:RejectedTopic"] = rejectedTopic,
        };
        if (schema is not null) values["EventStore:Schema"] = schema;
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>()) values[key] = value;
        var configuration = new ConfigurationBuilder().AddConfiguration(fixture.Settings).AddInMemoryCollection(values).Build();
        var app = PipelineHost.Build(configuration, roles);
        await app.StartAsync();
        return new TestHost(app, fixture, rawTopic, rejectedTopic, apiPort, ingestPort);
    }

    /// <summary>Everything in a topic, from the beginning of every partition to its current end.</summary>
    public List<ConsumeResult<string, byte[]>> ReadAll(string topic)
    {
        var kafka = new KafkaOptions { BootstrapServers = KafkaBootstrapServers };
        var config = kafka.ConsumerConfig("reader-" + Guid.NewGuid().ToString("N"), "test-reader");
        config.EnablePartitionEof = true;
        using var consumer = new ConsumerBuilder<string, byte[]>(config).Build();
        using var admin = new AdminClientBuilder(kafka.AdminConfig()).Build();
        var partitions = admin.GetMetadata(topic, TimeSpan.FromSeconds(10)).Topics.Single().Partitions.Select(p => p.PartitionId).ToList();
        consumer.Assign(partitions.Select(p => new TopicPartitionOffset(topic, p, Offset.Beginning)));
        var messages = new List<ConsumeResult<string, byte[]>>();
        var ended = new HashSet<int>();
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (ended.Count < partitions.Count && DateTime.UtcNow < deadline)
        {
            var result = consumer.Consume(TimeSpan.FromMilliseconds(200));
            if (result is null) continue;
            if (result.IsPartitionEOF) ended.Add(result.Partition.Value);
            else messages.Add(result);
        }
        if (ended.Count < partitions.Count) throw new TimeoutException($"Reading {topic} did not reach the end of every partition.");
        return messages;
    }

    /// <summary>Runs one SQL statement against the host's database, as an operator (or a failure) would.</summary>
    public async Task ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(PostgresConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        Api.Dispose();
        Ingest.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
        foreach (var state in _fleetStates) Directory.Delete(state, recursive: true);
    }
}
