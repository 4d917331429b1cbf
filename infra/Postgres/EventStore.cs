using JasperFx;
using JasperFx.Events;
using Marten;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using Pipeline.Core.Events;
using Pipeline.Infra.Hosting;
using Weasel.Core;

namespace Pipeline.Infra.Postgres;

/// <summary>Which schema of the database holds the pipeline's events, documents and tables. Bound from "EventStore".</summary>
public sealed class EventStoreOptions
{
    public const string Section = "EventStore";
    public const string DefaultSchema = "depin";

    public string Schema { get; set; } = DefaultSchema;
}

/// <summary>
/// The Marten event store as every stage opens it, from dependency injection: one <see cref="NpgsqlDataSource"/> for
/// the configured server, Marten on that data source (one stream per device keyed by its lower-case address, events
/// stored under their versioned wire names), each area adding its documents, projections and tables with
/// <c>ConfigureMarten</c>, and the schema applied by Marten when the host starts.
/// </summary>
public static class EventStore
{
    public static IServiceCollection AddEventStore(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<PostgresOptions>()
            .Bind(configuration.GetSection(PostgresOptions.Section))
            .Validate(o => !string.IsNullOrWhiteSpace(o.ConnectionString), "Postgres:ConnectionString must name the PostgreSQL server (PIPELINE_POSTGRES).")
            .ValidateOnStart();
        services.AddOptions<EventStoreOptions>()
            .Bind(configuration.GetSection(EventStoreOptions.Section))
            .Validate(o => System.Text.RegularExpressions.Regex.IsMatch(o.Schema, "^[a-z_][a-z0-9_]{0,62}$"), "EventStore:Schema must be a lower-case SQL identifier.")
            .ValidateOnStart();
        services.AddSingleton(provider => NpgsqlDataSource.Create(provider.GetRequiredService<IOptions<PostgresOptions>>().Value.ConnectionString!));
        services.AddSingleton<PostgresSessions>();
        services.AddSingleton<LeaderElection>();
        services.AddMarten(provider =>
            {
                var options = Options(provider.GetRequiredService<IOptions<EventStoreOptions>>().Value.Schema);
                options.Logger(new MartenLog(provider.GetRequiredService<ILogger<IDocumentStore>>()));
                return options;
            })
            .UseNpgsqlDataSource();
        // Not ApplyAllDatabaseChangesOnStartup: Marten's own start-up stops waiting when another process holds its lock
        // for about 10 s (a migration of a large table); this waits for it.
        services.AddHostedService<SchemaAtStart>();
        services.AddHealthChecks().AddCheck<PostgresHealthCheck>("postgres");
        return services;
    }

    /// <summary>
    /// Indexes an area keeps on mt_events itself (the marketplace's sales by device): Marten would otherwise drop them as
    /// extras whenever any process applies the schema, and the marketplace create them again at its next start.
    /// </summary>
    public static readonly IReadOnlyList<string> AreaEventIndexes = ["mt_events_data_sold_devices", "mt_events_data_sold_device"];

    /// <summary>The store's options before the areas add theirs.</summary>
    public static StoreOptions Options(string schema)
    {
        var options = new StoreOptions { DatabaseSchemaName = schema };
        options.Events.StreamIdentity = StreamIdentity.AsString;
        // One function call per stream per batch, timestamps from the application clock (not the session time zone).
        options.Events.AppendMode = EventAppendMode.QuickWithServerTimestamps;
        // Event ids derive from reading ids: a replay that slipped past every other check still cannot store twice.
        options.Events.EnableUniqueIndexOnEventId = true;
        foreach (var index in AreaEventIndexes) options.Events.IgnoreIndex(index);
        // Applied once at start (SchemaAtStart), never on the hot path.
        options.AutoCreateSchemaObjects = AutoCreate.None;
        options.UseSystemTextJsonForSerialization(EnumStorage.AsString, Casing.CamelCase);
        foreach (var (type, name) in EventNames.All) options.Events.MapEventType(type, name);
        return options;
    }

    /// <summary>Applies the store's schema when the host starts, before the stages' services start.</summary>
    private sealed class SchemaAtStart(IDocumentStore store) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken) => store.ApplySchemaAsync(cancellationToken);

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    /// <summary>The schema the store lives in: every hand-written statement names its tables with it.</summary>
    public static string Schema(this IDocumentStore store) => store.Options.DatabaseSchemaName;
}
