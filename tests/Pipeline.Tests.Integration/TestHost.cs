using System.Net;
using System.Net.Sockets;
using Confluent.Kafka;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Npgsql;
using Pipeline.Cli.Hosting;
using Pipeline.Cli.Simulator;
using Pipeline.Infra.Kafka;
using Pipeline.Infra.Stack;
using Pipeline.Ingest.Mqtt;

namespace Pipeline.Tests.Integration;

/// <summary>
/// The depin host (PipelineHost, as `depin up` builds it) with the given roles on free ports, on the fixture's stack,
/// with topics of its own so tests never see each other's messages.
/// </summary>
public sealed class TestHost : IAsyncDisposable
{
    private TestHost(WebApplication app, StackFixture fixture, DevStack stack, string rawTopic, string rejectedTopic, int apiPort, int ingestPort)
    {
        App = app;
        Fixture = fixture;
        Stack = stack;
        RawTopic = rawTopic;
        RejectedTopic = rejectedTopic;
        Api = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{apiPort}") };
        Ingest = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{ingestPort}") };
    }

    public WebApplication App { get; }
    public StackFixture Fixture { get; }

    /// <summary>The stack this host runs on: the fixture's servers, and its own event store schema when one was asked for.</summary>
    public DevStack Stack { get; }
    public string RawTopic { get; }
    public string RejectedTopic { get; }
    public HttpClient Api { get; }
    public HttpClient Ingest { get; }
    public int MqttPort => App.Services.GetRequiredService<MqttGateway>().Port;
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
        var stack = schema is null ? fixture.Stack : await fixture.CreateStackAsync(schema);
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
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>()) values[key] = value;
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(values).Build();
        var app = PipelineHost.Build(configuration, stack, roles);
        await app.StartAsync();
        return new TestHost(app, fixture, stack, rawTopic, rejectedTopic, apiPort, ingestPort);
    }

    /// <summary>Everything in a topic, from the beginning of every partition to its current end.</summary>
    public List<ConsumeResult<string, byte[]>> ReadAll(string topic)
    {
        var config = new KafkaOptions().ConsumerConfig(Fixture.Stack.KafkaBootstrapServers, "reader-" + Guid.NewGuid().ToString("N"), "test-reader");
        config.EnablePartitionEof = true;
        using var consumer = new ConsumerBuilder<string, byte[]>(config).Build();
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = Fixture.Stack.KafkaBootstrapServers }).Build();
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
        await using var connection = new NpgsqlConnection(Stack.PostgresConnectionString);
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
        if (Stack != Fixture.Stack) await Stack.DisposeAsync();
        foreach (var state in _fleetStates) Directory.Delete(state, recursive: true);
    }
}
