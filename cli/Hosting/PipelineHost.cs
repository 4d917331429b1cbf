using System.Net;
using Pipeline.Infra.Hosting;
using Pipeline.Infra.Postgres;
using Pipeline.Ingest;
using Pipeline.Marketplace;
using Pipeline.Projections;
using Pipeline.Registry;
using Pipeline.Rewards;
using Pipeline.Rewards.Api;
using Pipeline.Streams;
using Pipeline.Web;

namespace Pipeline.Cli.Hosting;

/// <summary>The roles a process can take: `up` takes all of them, `depin ingest` only Ingest, and so on.</summary>
[Flags]
public enum Roles
{
    None = 0,
    Api = 1,
    Ingest = 2,
    Streams = 4,
    Projections = 8,
    Rewards = 16,
    All = Api | Ingest | Streams | Projections | Rewards,
}

/// <summary>
/// The web host that carries the areas, composed from configuration alone: the service defaults, the event store when
/// a role needs it, then each area's Add&lt;Area&gt; and Map&lt;Area&gt;Api. Kestrel listens on the API and ingest
/// ports (or the status port when a process has neither). Whether PostgreSQL and Kafka are real servers or the local
/// dev servers makes no difference here: configuration names them either way.
/// </summary>
public static class PipelineHost
{
    public static WebApplication Build(IConfiguration configuration, Roles roles)
    {
        var endpoints = PipelineConfiguration.Endpoints(configuration);
        // Configuration comes from the environment and the command line, never from files that change: without this the
        // host watches its working directory and the folders under it for an appsettings.json, and wakes at every write
        // there — PostgreSQL's and the lake's under .data when `depin up` runs from the repository (1.5 µs per reading
        // of the processors' CPU in bench streams run from the folder holding its scratch servers).
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = "depin", Args = ["--hostBuilder:reloadConfigOnChange=false"] });
        builder.Configuration.AddConfiguration(configuration);
        ServiceDefaults.ConfigureLogging(builder.Logging, configuration);

        var address = IPAddress.Parse(endpoints.ListenAddress);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            if (roles.HasFlag(Roles.Api)) kestrel.Listen(address, endpoints.ApiPort);
            if (roles.HasFlag(Roles.Ingest)) kestrel.Listen(address, endpoints.IngestPort);
            // A process without an HTTP surface of its own still answers /health and /metrics.
            if (!roles.HasFlag(Roles.Api) && !roles.HasFlag(Roles.Ingest)) kestrel.Listen(address, endpoints.StatusPort);
        });

        var services = builder.Services;
        services.AddServiceDefaults(configuration);
        if (ParentWatch.ParentFromEnvironment() is { } parent)
            services.AddHostedService(provider => ActivatorUtilities.CreateInstance<ParentWatch>(provider, parent));
        if (NeedsEventStore(roles)) services.AddEventStore(configuration);
        if (roles.HasFlag(Roles.Ingest)) services.AddIngest(configuration);
        if (roles.HasFlag(Roles.Api)) services.AddRegistry(configuration);
        if (roles.HasFlag(Roles.Api)) services.AddMarketplace(configuration);
        if (roles.HasFlag(Roles.Api)) services.AddWebApp(configuration);
        if (roles.HasFlag(Roles.Streams)) services.AddStreams(configuration);
        if (roles.HasFlag(Roles.Projections)) services.AddProjections(configuration);
        if (roles.HasFlag(Roles.Rewards)) services.AddRewards(configuration).AddMarketplaceDocuments();
        if (roles.HasFlag(Roles.Api)) services.AddRewardsReadModel(configuration);

        var app = builder.Build();
        app.UseProblemResponses();
        if (roles.HasFlag(Roles.Api)) app.UseRateLimiter();
        app.MapServiceDefaults();
        if (roles.HasFlag(Roles.Ingest)) app.MapIngestApi(endpoints.IngestPort);
        if (roles.HasFlag(Roles.Api)) app.MapRegistryApi(endpoints.ApiPort);
        if (roles.HasFlag(Roles.Api)) app.MapMarketplaceApi(endpoints.ApiPort);
        if (roles.HasFlag(Roles.Api)) app.MapRewardsApi(endpoints.ApiPort);
        if (roles.HasFlag(Roles.Api)) app.MapWebApp(endpoints.ApiPort);
        return app;
    }

    /// <summary>Every role but the ingest edge reads or writes the event store.</summary>
    public static bool NeedsEventStore(Roles roles) => roles != Roles.Ingest;

    /// <summary>The rewards stage publishes roots and the API reads the distributor: both need a chain.</summary>
    public static bool NeedsChain(Roles roles) => roles.HasFlag(Roles.Rewards) || roles.HasFlag(Roles.Api);
}
