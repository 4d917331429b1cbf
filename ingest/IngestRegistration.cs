using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.OpenApi;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Microsoft.OpenApi;
using Pipeline.Infra.Hosting;
using Pipeline.Ingest.Gateway;
using Pipeline.Ingest.Http;
using Pipeline.Ingest.Mqtt;

namespace Pipeline.Ingest;

public static class IngestRegistration
{
    /// <summary>
    /// The endpoint reads at most one byte past the batch limit and refuses the rest unread. Kestrel's own limit is
    /// higher: after the 413 it drains a body up to that size so the client reads the answer instead of a reset
    /// connection, and cuts the connection beyond it.
    /// </summary>
    private const long DrainFactor = 16;

    /// <summary>The edge's services: the producer, the gateway, rate limits, metrics and the MQTT endpoint.</summary>
    public static IServiceCollection AddIngest(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<IngestOptions>()
            .Bind(configuration.GetSection(IngestOptions.Section))
            .Validate(o => o.MaxInFlightBytes > o.Limits.MaxBatchBytes, "Ingest:MaxInFlightBytes must exceed one batch's bytes.")
            .Validate(o => o.AckTimeout > TimeSpan.Zero && o.RetryAfterSeconds > 0, "Ingest:AckTimeout and RetryAfterSeconds must be positive.")
            .Validate(o => o.DeviceReadingsPerSecond > 0 && o.DeviceBurst > 0 && o.ClientRequestsPerSecond > 0 && o.ClientBurst > 0, "Ingest rate limits must be positive.")
            .Validate(o => o.Backlog.Headroom is >= 0 and < 1 && o.Backlog.RefreshInterval > TimeSpan.Zero && !string.IsNullOrWhiteSpace(o.Backlog.GroupId),
                "Ingest:Backlog:Headroom must be in [0, 1), RefreshInterval positive and GroupId set.")
            .Validate(o => o.RecentReadings > 0 && o.RecentWindow > TimeSpan.Zero, "Ingest:RecentReadings and RecentWindow must be positive.")
            .Validate(o => o.Mqtt.MaxPacketBytes >= 1024 && o.Mqtt.MaxConnectBytes >= 256 && o.Mqtt.ConnectionsPerAddress > 0 && o.Mqtt.LoginWindow > TimeSpan.Zero && o.Mqtt.RememberedLogins > 0,
                "Ingest:Mqtt:MaxPacketBytes (at least 1024), MaxConnectBytes (at least 256), ConnectionsPerAddress, LoginWindow and RememberedLogins must be positive.")
            .ValidateOnStart();
        // The processors' group is the one they are configured with, unless the edge is told otherwise.
        services.PostConfigure<IngestOptions>(o =>
        {
            if (configuration["Ingest:Backlog:GroupId"] is null && configuration["Streams:GroupId"] is { Length: > 0 } group) o.Backlog.GroupId = group;
        });
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<BacklogGate>();
        services.AddHostedService<BacklogMonitor>();
        services.AddSingleton<ReadingProducer>();
        services.AddSingleton<IReadingBroker>(provider => provider.GetRequiredService<ReadingProducer>());
        services.AddSingleton<IngestMetrics>();
        services.AddSingleton<ReadingGateway>();
        services.AddSingleton<ClientRateLimiter>();
        services.AddSingleton<MqttGateway>();
        services.AddHostedService(provider => provider.GetRequiredService<MqttGateway>());
        return services;
    }

    /// <summary>POST /v1/readings, answered only on the ingest port.</summary>
    public static IEndpointRouteBuilder MapIngestApi(this IEndpointRouteBuilder app, int port)
    {
        var limits = app.ServiceProvider.GetRequiredService<IOptions<IngestOptions>>().Value.Limits;
        var ingest = app.MapGroupOnPort("", port).WithTags("Ingest");
        ingest.MapPost("/v1/readings", ReadingsEndpoint.HandleAsync)
            .WithName("PostReadings")
            .WithSummary("Submit signed readings")
            .WithDescription("One envelope {\"payload\": \"<JSON text>\", \"sig\": \"0x…\"}, a JSON array of them, or NDJSON (application/x-ndjson); gzip with Content-Encoding. 202 once the broker acknowledged every accepted reading (a reading it already acknowledged to this edge is answered duplicate and not produced again); a problem response otherwise, with a receipt per reading.")
            .AddOpenApiOperationTransformer(DescribeBodyAsync)
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
            .ProducesProblem(StatusCodes.Status429TooManyRequests)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable)
            .WithMetadata(new RequestSizeLimitAttribute(DrainFactor * (limits.MaxBatchBytes + 1L)));
        return app;
    }

    /// <summary>
    /// The request body, for the OpenAPI document only. Accepts&lt;T&gt; would also make routing refuse other media types
    /// itself, with a bare 415 instead of the endpoint's reason and detail, and turn away the application/ndjson and application/jsonl aliases.
    /// </summary>
    private static async Task DescribeBodyAsync(OpenApiOperation operation, OpenApiOperationTransformerContext context, CancellationToken cancellation)
    {
        var envelope = await context.GetOrCreateSchemaAsync(typeof(ReadingEnvelope), null, cancellation);
        operation.RequestBody = new OpenApiRequestBody
        {
            Required = true,
            Description = "Signed readings: one envelope or an array of them as JSON, or one envelope per line as NDJSON; optionally gzip (Content-Encoding).",
            Content = new Dictionary<string, OpenApiMediaType>
            {
                ["application/json"] = new() { Schema = new OpenApiSchema { OneOf = [envelope, new OpenApiSchema { Type = JsonSchemaType.Array, Items = envelope }] } },
                ["application/x-ndjson"] = new() { Schema = new OpenApiSchema { Type = JsonSchemaType.String, Description = "One envelope object per line." } },
            },
        };
    }
}
