using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Pipeline.Infra.Http;
using Pipeline.Ingest.Gateway;
using Pipeline.Ingest.Http;
using Pipeline.Ingest.Mqtt;

namespace Pipeline.Ingest;

public static class IngestRegistration
{
    /// <summary>The edge's services: the producer, the gateway, rate limits, metrics and the MQTT endpoint.</summary>
    public static IServiceCollection AddIngest(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<IngestOptions>()
            .Bind(configuration.GetSection(IngestOptions.Section))
            .Validate(o => o.MaxInFlightBytes > o.Limits.MaxBatchBytes, "Ingest:MaxInFlightBytes must exceed one batch's bytes.")
            .Validate(o => o.AckTimeout > TimeSpan.Zero && o.RetryAfterSeconds > 0, "Ingest:AckTimeout and RetryAfterSeconds must be positive.")
            .Validate(o => o.DeviceReadingsPerSecond > 0 && o.DeviceBurst > 0 && o.ClientRequestsPerSecond > 0 && o.ClientBurst > 0, "Ingest rate limits must be positive.")
            .ValidateOnStart();
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<ReadingProducer>();
        services.AddSingleton<IngestMetrics>();
        services.AddSingleton<ReadingGateway>();
        services.AddSingleton<ClientRateLimiter>();
        services.AddSingleton<MqttGateway>();
        services.AddHostedService(provider => provider.GetRequiredService<MqttGateway>());
        return services;
    }

    /// <summary>POST /v1/readings and GET /problems/{reason}, answered only on the ingest port.</summary>
    public static IEndpointRouteBuilder MapIngestEndpoints(this IEndpointRouteBuilder app, int port)
    {
        var ingest = app.MapGroup("").RequireHost($"*:{port}").WithTags("Ingest");
        ingest.MapPost("/v1/readings", ReadingsEndpoint.HandleAsync)
            .WithName("PostReadings")
            .WithSummary("Submit signed readings")
            .WithDescription("One envelope {\"payload\": \"<JSON text>\", \"sig\": \"0x…\"}, a JSON array of them, or NDJSON (application/x-ndjson); gzip with Content-Encoding. 202 once the broker acknowledged every accepted reading; a problem response otherwise, with a receipt per reading.")
            .Produces<ReadingsResponse>(StatusCodes.Status202Accepted)
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
            .ProducesProblem(StatusCodes.Status429TooManyRequests)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable)
            .WithMetadata(new Microsoft.AspNetCore.Mvc.RequestSizeLimitAttribute(64L * 1024 * 1024));
        ingest.MapGet("/problems/{reason}", (string reason) => Problems.Explain(reason))
            .WithName("ExplainProblem")
            .WithSummary("What a reason code means");
        return app;
    }
}
