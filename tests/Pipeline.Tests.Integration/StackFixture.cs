using Microsoft.Extensions.Logging.Abstractions;
using Pipeline.Cli.Hosting;
using Pipeline.Infra.Kafka;
using Pipeline.Infra.Stack;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration;

/// <summary>
/// The stack every integration test uses, started once per run from the same settings `depin up` reads (PIPELINE_POSTGRES,
/// PIPELINE_KAFKA, PIPELINE_DATA, PIPELINE_Kafka__…): by default the local cluster under the repository's .data and an
/// embedded broker.
/// </summary>
public sealed class StackFixture : IAsyncLifetime
{
    private DevStack? _stack;

    public DevStack Stack => _stack ?? throw new InvalidOperationException("The stack is not started.");

    public async Task InitializeAsync()
    {
        var configuration = PipelineConfiguration.Build([]);
        var options = PipelineConfiguration.StackOptions(configuration);
        if (configuration["Data:Directory"] is null) options.DataDirectory = Path.Combine(RepositoryTools.Root, ".data");
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
}

[CollectionDefinition(Name)]
public sealed class StackCollection : ICollectionFixture<StackFixture>
{
    public const string Name = "stack";
}
