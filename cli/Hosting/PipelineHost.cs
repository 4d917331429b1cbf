using System.Net;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.DependencyInjection.Extensions;
using OpenTelemetry.Metrics;
using Pipeline.Infra.Http;
using Pipeline.Infra.Kafka;
using Pipeline.Infra.Stack;
using Pipeline.Ingest;
using Pipeline.Projections;
using Pipeline.Streams;
using Pipeline.Streams.Registry;
using Scalar.AspNetCore;

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
    All = Api | Ingest | Streams | Projections,
}

/// <summary>
/// The web host that carries the stages: Kestrel on the API and ingest ports (or the status port when a process has
/// neither), /health, /metrics for Prometheus and /problems/{reason} on each, structured logs. Stages add their
/// services and endpoints to it.
/// </summary>
public static class PipelineHost
{
    public static WebApplication Build(IConfiguration configuration, DevStack stack, Roles roles)
    {
        var endpoints = PipelineConfiguration.Endpoints(configuration);
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = "depin" });
        builder.Configuration.AddConfiguration(configuration);
        ConfigureLogging(builder.Logging, configuration);

        var address = IPAddress.Parse(endpoints.ListenAddress);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            if (roles.HasFlag(Roles.Api)) kestrel.Listen(address, endpoints.ApiPort);
            if (roles.HasFlag(Roles.Ingest)) kestrel.Listen(address, endpoints.IngestPort);
            // A process without an HTTP surface of its own still answers /health and /metrics.
            if (!roles.HasFlag(Roles.Api) && !roles.HasFlag(Roles.Ingest)) kestrel.Listen(address, endpoints.StatusPort);
        });

        builder.Services.AddSingleton(stack);
        builder.Services.AddSingleton(endpoints);
        builder.Services.Configure<KafkaOptions>(configuration.GetSection(KafkaOptions.Section));
        builder.Services.AddProblemResponses();
        builder.Services.AddLocalPortRouting();
        builder.Services.ConfigureHttpJsonOptions(json => ConfigureWireJson(json.SerializerOptions));
        builder.Services.AddOpenApi(o => o.AddDocumentTransformer((document, _, _) =>
        {
            document.Info = new()
            {
                Title = "DePIN telemetry pipeline",
                Version = "v1",
                Description = "Register devices and look them up (the API port), and send signed readings (the ingest port: POST /v1/readings). The data marketplace and rewards are not built yet.",
            };
            return Task.CompletedTask;
        }));
        builder.Services.AddSingleton<KafkaHealthCheck>();
        var health = builder.Services.AddHealthChecks().AddCheck<KafkaHealthCheck>("kafka");
        if (stack.HasEventStore) health.AddCheck<PostgresHealthCheck>("postgres");
        if (roles.HasFlag(Roles.Ingest)) builder.Services.AddIngest(configuration);
        if (roles.HasFlag(Roles.Api)) builder.Services.AddDeviceRegistry(configuration).AddRegistryLimits(configuration);
        if (roles.HasFlag(Roles.Streams)) builder.Services.AddStreams(configuration);
        if (roles.HasFlag(Roles.Projections)) builder.Services.AddProjections(configuration);
        builder.Services.TryAddSingleton(TimeProvider.System);
        builder.Services.AddOpenTelemetry().WithMetrics(metrics => metrics
            .AddMeter("Pipeline.*")
            .AddAspNetCoreInstrumentation()
            .AddRuntimeInstrumentation()
            .AddPrometheusExporter());

        var app = builder.Build();
        app.UseProblemResponses();
        if (roles.HasFlag(Roles.Api)) app.UseRateLimiter();
        app.MapHealthChecks("/health", HealthResponse.Options);
        app.MapPrometheusScrapingEndpoint("/metrics");
        app.MapOpenApi("/openapi/{documentName}.json");
        app.MapScalarApiReference("/docs", o => o.WithOpenApiRoutePattern("/openapi/{documentName}.json").WithTitle("DePIN pipeline API"));
        app.MapProblemEndpoints();
        if (roles.HasFlag(Roles.Ingest)) app.MapIngestEndpoints(endpoints.IngestPort);
        if (roles.HasFlag(Roles.Api)) app.MapRegistryEndpoints(endpoints.ApiPort);
        return app;
    }

    /// <summary>
    /// JSON as the HTTP endpoints write and read it: no nulls, and enums by name as clients send them ("kind":"vehicle"),
    /// in responses and in the OpenAPI schemas alike.
    /// </summary>
    public static void ConfigureWireJson(JsonSerializerOptions options)
    {
        options.DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull;
        options.Converters.Add(new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower, allowIntegerValues: false));
    }

    /// <summary>The options of <see cref="ConfigureWireJson"/>, for clients of the API such as tests.</summary>
    public static JsonSerializerOptions WireJson { get; } = CreateWireJson();

    private static JsonSerializerOptions CreateWireJson()
    {
        var options = new JsonSerializerOptions(JsonSerializerDefaults.Web);
        ConfigureWireJson(options);
        options.MakeReadOnly(populateMissingResolver: true);
        return options;
    }

    /// <summary>Human-readable single lines by default; one JSON object per line with PIPELINE_LOG_FORMAT=json.</summary>
    public static void ConfigureLogging(ILoggingBuilder logging, IConfiguration configuration)
    {
        logging.ClearProviders();
        if (string.Equals(configuration["LOG_FORMAT"], "json", StringComparison.OrdinalIgnoreCase))
        {
            logging.AddJsonConsole(o => o.TimestampFormat = "O");
        }
        else
        {
            logging.AddSimpleConsole(o =>
            {
                o.SingleLine = true;
                o.TimestampFormat = "HH:mm:ss ";
            });
        }
        logging.SetMinimumLevel(LogLevel.Information);
        logging.AddFilter("Microsoft", LogLevel.Warning);
        logging.AddFilter("Marten", LogLevel.Warning);
        logging.AddFilter("JasperFx", LogLevel.Warning);
        logging.AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Information);
    }
}
