using Microsoft.Extensions.Logging.Abstractions;
using Pipeline.Cli.Hosting;
using Pipeline.Infra.Kafka;
using Pipeline.Infra.Stack;

namespace Pipeline.Tests.Integration;

/// <summary>
/// The stack every integration test uses, started once per run exactly as `depin up` starts it. Connection details
/// come only from here: PIPELINE_POSTGRES and PIPELINE_KAFKA name servers to use; otherwise the local cluster under
/// PIPELINE_DATA (default: the repository's .data) and an embedded broker.
/// </summary>
public sealed class StackFixture : IAsyncLifetime
{
    private DevStack? _stack;

    public DevStack Stack => _stack ?? throw new InvalidOperationException("The stack is not started.");

    public static string RepositoryRoot { get; } = FindRoot();

    public async Task InitializeAsync()
    {
        var options = new StackOptions
        {
            DataDirectory = Environment.GetEnvironmentVariable("PIPELINE_DATA") ?? Path.Combine(RepositoryRoot, ".data"),
            Postgres = { ConnectionString = Environment.GetEnvironmentVariable("PIPELINE_POSTGRES") },
            Kafka = { BootstrapServers = Environment.GetEnvironmentVariable("PIPELINE_KAFKA") },
            ConfigureStore = PipelineStore.Configure,
        };
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        _stack = await DevStack.StartAsync(options, NullLogger.Instance, timeout.Token);
    }

    public async Task DisposeAsync()
    {
        if (_stack is not null) await _stack.DisposeAsync();
    }

    /// <summary>A topic of its own for one test, with the given partitions.</summary>
    public async Task<string> CreateTopicAsync(string prefix, int partitions = 3)
    {
        var topic = $"test.{prefix}.{Guid.NewGuid():N}";
        await KafkaTopics.EnsureAsync(Stack.KafkaBootstrapServers, Stack.EmbeddedKafka, partitions, [topic]);
        return topic;
    }

    /// <summary>The stack with an event store in a schema of its own, emptied first: isolation per test class, reset before, never after.</summary>
    public Task<DevStack> CreateStackAsync(string schema) => Stack.WithSchemaAsync(schema);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Pipeline.sln"))) return dir.FullName;
        }
        throw new InvalidOperationException("Tests run from inside the repository.");
    }
}

[CollectionDefinition(Name)]
public sealed class StackCollection : ICollectionFixture<StackFixture>
{
    public const string Name = "stack";
}
