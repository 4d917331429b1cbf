using Marten;
using Microsoft.Extensions.Logging.Abstractions;
using Pipeline.Cli.Hosting;
using Pipeline.Infra.Development;
using Pipeline.Infra.Postgres;
using Pipeline.Projections;
using Pipeline.Registry;
using Spectre.Console;

namespace Pipeline.Bench;

/// <summary>
/// Throw-away servers for one benchmark: their own PostgreSQL cluster on a free port and an embedded broker, in a
/// temporary folder; and the areas' services composed from DI against them, as a host would.
/// </summary>
public sealed class Scratch : IAsyncDisposable
{
    private readonly ServiceProvider? _services;

    private Scratch(string folder, DevServers servers, ServiceProvider? services)
    {
        Folder = folder;
        Servers = servers;
        _services = services;
    }

    public string Folder { get; }
    public DevServers Servers { get; }
    public string KafkaBootstrapServers => Servers.KafkaBootstrapServers!;
    public IServiceProvider Services => _services ?? throw new InvalidOperationException("This scratch runs without the event store.");
    public IDocumentStore Store => Services.GetRequiredService<IDocumentStore>();

    /// <summary>A service of the scratch's composition, or one made from its services.</summary>
    public T Create<T>() where T : notnull => ActivatorUtilities.GetServiceOrCreateInstance<T>(Services);

    /// <summary>Configuration for a host on these servers: the given settings over where PostgreSQL and Kafka are.</summary>
    public IConfiguration Configuration(params KeyValuePair<string, string?>[] settings) =>
        PipelineConfiguration.With(PipelineConfiguration.Build(settings), Servers);

    public static async Task<Scratch> StartAsync(bool withEventStore = true, bool withChain = false)
    {
        var folder = Directory.CreateTempSubdirectory("depin-bench-").FullName;
        var options = new DevServerOptions
        {
            DataDirectory = folder,
            WithPostgres = withEventStore,
            Postgres = new PostgresOptions { Port = FreePort() },
            WithChain = withChain,
            ChainPort = FreePort(),
        };
        var servers = await AnsiConsole.Status().StartAsync("Starting a scratch PostgreSQL cluster and broker…", _ => DevServers.StartAsync(options, NullLogger.Instance, CancellationToken.None));
        AnsiConsole.MarkupLineInterpolated($"Scratch servers in {folder}");
        ServiceProvider? services = null;
        if (withEventStore)
        {
            var configuration = PipelineConfiguration.With(PipelineConfiguration.Build([]), servers);
            services = new ServiceCollection().AddLogging().AddSingleton(TimeProvider.System)
                .AddEventStore(configuration).AddRegistry(configuration).AddLakeStore()
                .BuildServiceProvider();
            await services.GetRequiredService<IDocumentStore>().ApplySchemaAsync();
        }
        return new Scratch(folder, servers, services);
    }

    public static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        if (_services is not null) await _services.DisposeAsync();
        await Servers.DisposeAsync();
        Directory.Delete(Folder, recursive: true);
    }
}
