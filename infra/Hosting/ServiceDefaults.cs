using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;
using Pipeline.Infra.Kafka;
using Scalar.AspNetCore;

namespace Pipeline.Infra.Hosting;

/// <summary>Where the pipeline keeps its state: the PostgreSQL cluster, the lake, DuckDB files, keys. Bound from "Data".</summary>
public sealed class DataOptions
{
    public const string Section = "Data";

    public string Directory { get; set; } = ".data";

    public string FullPath => Path.GetFullPath(Directory);
}

/// <summary>
/// What every process of the pipeline has, whichever areas it hosts: Kafka options resolved from configuration (and the
/// pipeline's topics made at start), the data folder, a clock, problem responses (RFC 9457) on every port, routing by
/// local port, the wire JSON, the OpenAPI document, health checks and Prometheus metrics. Areas then add themselves
/// with <c>Add&lt;Area&gt;</c> and <c>Map&lt;Area&gt;Api</c>; the event store with <see cref="Postgres.EventStore.AddEventStore"/>.
/// </summary>
public static class ServiceDefaults
{
    public static IServiceCollection AddServiceDefaults(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<KafkaOptions>()
            .Bind(configuration.GetSection(KafkaOptions.Section))
            .Validate(o => !string.IsNullOrWhiteSpace(o.BootstrapServers), "Kafka:BootstrapServers must name the brokers (PIPELINE_KAFKA).")
            .Validate(o => o.Partitions > 0, "Kafka:Partitions must be positive.")
            .ValidateOnStart();
        services.AddHostedService<KafkaTopicsInitializer>();
        services.AddOptions<DataOptions>().Bind(configuration.GetSection(DataOptions.Section));
        services.TryAddSingleton(configuration.GetSection(EndpointsOptions.Section).Get<EndpointsOptions>() ?? new EndpointsOptions());
        services.TryAddSingleton(TimeProvider.System);
        services.AddProblemResponses();
        services.AddLocalPortRouting();
        services.ConfigureHttpJsonOptions(json => ConfigureWireJson(json.SerializerOptions));
        services.AddOpenApi(o => o.AddDocumentTransformer((document, _, _) =>
        {
            document.Info = new()
            {
                Title = "DePIN telemetry pipeline",
                Version = "v1",
                Description = "On the API port: register devices and look them up; the data marketplace (catalog, grants, sandboxed and metered SQL, signed Parquet exports, contributor sign-in); rewards per epoch: epochs and their Merkle roots on chain, a contributor's amounts, claim proofs and explanations. On the ingest port: send signed readings (POST /v1/readings).",
            };
            return Task.CompletedTask;
        }));
        services.AddSingleton<KafkaHealthCheck>();
        services.AddHealthChecks().AddCheck<KafkaHealthCheck>("kafka");
        services.AddOpenTelemetry().WithMetrics(metrics => metrics
            .AddMeter("Pipeline.*")
            .AddAspNetCoreInstrumentation()
            .AddRuntimeInstrumentation()
            .AddPrometheusExporter());
        return services;
    }

    /// <summary>Problem responses, /health, /metrics, the OpenAPI document and its docs, and /problems/{reason}: on every port.</summary>
    public static WebApplication MapServiceDefaults(this WebApplication app)
    {
        app.MapHealthChecks("/health", HealthResponse.Options);
        app.MapPrometheusScrapingEndpoint("/metrics");
        app.MapOpenApi("/openapi/{documentName}.json");
        app.MapScalarApiReference("/docs", o => o.WithOpenApiRoutePattern("/openapi/{documentName}.json").WithTitle("DePIN pipeline API"));
        app.MapProblemEndpoints();
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
