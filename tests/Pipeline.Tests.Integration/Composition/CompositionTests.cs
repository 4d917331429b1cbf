using Marten;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Infra.Hosting;
using Pipeline.Infra.Postgres;
using Pipeline.Ingest;
using Pipeline.Ingest.Gateway;
using Pipeline.Projections;
using Pipeline.Projections.Lake;
using Pipeline.Registry;
using Pipeline.Streams;
using Pipeline.Tests.Integration.Projections;
using Pipeline.Tests.Integration.Streams;

namespace Pipeline.Tests.Integration.Composition;

/// <summary>
/// Issue 12: every stage composes from dependency injection alone — the service defaults, the event store and its own
/// Add&lt;Area&gt; — against a PostgreSQL and a broker given only by their connection strings, each in a host of its
/// own as separate processes would run, with no type of the local dev servers anywhere in the container.
/// </summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class CompositionTests(StackFixture fixture)
{
    private const string Schema = "it_composition";

    [Fact]
    public async Task EachStage_ComposedFromConnectionStrings_CarriesAReadingFromRegistrationToTheLake_WithNoDevServerType()
    {
        await fixture.DropSchemaAsync(Schema);
        var lake = Directory.CreateTempSubdirectory("depin-lake-").FullName;
        var settings = new Dictionary<string, string?>
        {
            ["Postgres:ConnectionString"] = fixture.PostgresConnectionString,
            ["Kafka:BootstrapServers"] = fixture.KafkaBootstrapServers,
            ["Kafka:RawTopic"] = await fixture.CreateTopicAsync("raw"),
            ["Kafka:RejectedTopic"] = await fixture.CreateTopicAsync("rejected"),
            ["EventStore:Schema"] = Schema,
            ["Lake:Directory"] = lake,
            ["Endpoints:MqttPort"] = "0",
        };
        using var registryHost = Compose(settings, (services, configuration) => services.AddEventStore(configuration).AddRegistry(configuration));
        using var ingestHost = Compose(settings, (services, configuration) => services.AddIngest(configuration));
        using var streamsHost = Compose(settings, (services, configuration) => services.AddEventStore(configuration).AddStreams(configuration));
        using var projectionsHost = Compose(settings, (services, configuration) => services.AddEventStore(configuration).AddProjections(configuration));
        IHost[] hosts = [registryHost, ingestHost, streamsHost, projectionsHost];
        try
        {
            foreach (var host in hosts) await host.StartAsync();

            var device = new TestDevice("composed");
            var owner = EthKey.Generate();
            var message = Registration.Message(owner, device.Key);
            var (registered, refused) = await registryHost.Services.GetRequiredService<DeviceRegistry>()
                .RegisterAsync(message.ToJson(), message.Sign(owner), message.Sign(device.Key), CancellationToken.None);
            Assert.True(registered is not null, refused?.Detail);

            var reading = device.Next();
            var batch = BatchParser.Parse(reading.Envelope, BatchFormat.Json, EnvelopeLimits.Default);
            var submitted = await ingestHost.Services.GetRequiredService<ReadingGateway>().SubmitAsync(batch.Items, new Sender("http", "composition-test"), CancellationToken.None);
            Assert.Equal(1, submitted.Accepted);

            var view = new HostView(streamsHost, fixture);
            await PipelineProbe.WaitForProcessorsAsync(view, settings["Kafka:RawTopic"]!);
            Assert.Equal([reading.Id], (await PipelineProbe.AcceptedAsync(view)).Select(a => a.ReadingId));

            var lakeStore = projectionsHost.Services.GetRequiredService<LakeStore>();
            var manifest = lakeStore.Manifest(LakeProjector.LiveLake);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            while ((await manifest.FilesAsync(CancellationToken.None)).Count == 0)
            {
                Assert.True(DateTime.UtcNow < deadline, "The lake did not project the reading within 60 s.");
                await Task.Delay(100);
            }
            using var duck = LakeCatalog.Open(lake, await manifest.FilesAsync(CancellationToken.None), TimeSpan.FromHours(1));
            Assert.Equal(1L, LakeProbe.Query(duck, $"SELECT count(*) AS n FROM vehicle_signals WHERE reading_id = '{reading.Id}'").Single()["n"]);
        }
        finally
        {
            foreach (var host in hosts.Reverse()) await host.StopAsync();
            Directory.Delete(lake, recursive: true);
        }
    }

    /// <summary>A host of the service defaults and one area, from configuration alone.</summary>
    private static IHost Compose(IDictionary<string, string?> settings, Action<IServiceCollection, IConfiguration> area)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(settings);
        builder.Services.AddLogging();
        builder.Services.AddServiceDefaults(builder.Configuration);
        area(builder.Services, builder.Configuration);
        Assert.DoesNotContain(builder.Services, d => IsDevServerType(d.ServiceType) || IsDevServerType(d.ImplementationType) || IsDevServerType(d.ImplementationInstance?.GetType()));
        return builder.Build();
    }

    private static bool IsDevServerType(Type? type) => type?.Namespace?.StartsWith("Pipeline.Infra.Development", StringComparison.Ordinal) == true;

    private sealed class HostView(IHost host, StackFixture fixture) : IPipelineView
    {
        public string PostgresConnectionString => fixture.PostgresConnectionString;
        public string KafkaBootstrapServers => fixture.KafkaBootstrapServers;
        public IDocumentStore Store => host.Services.GetRequiredService<IDocumentStore>();
    }
}
