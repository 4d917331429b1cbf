using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Pipeline.Web.Api;

namespace Pipeline.Web.Operator;

/// <summary>What the operator page shows, read from the host's /metrics (and the rewards API's epochs when it is served).</summary>
public sealed record StatusSnapshot(
    DateTimeOffset At,
    double? IngestReceived,
    double? IngestAccepted,
    double? IngestRefused,
    double? StreamsProcessed,
    double? StreamsLag,
    double? StreamsLostToRetention,
    double? LakeRows,
    double? LakeLagSeconds,
    IReadOnlyDictionary<string, double> RejectedByReason,
    IReadOnlyDictionary<string, double> RefusedAtEdgeByReason)
{
    public static StatusSnapshot Of(MetricsScrape scrape, DateTimeOffset at) => new(
        at,
        scrape.Sum("pipeline_ingest_readings_received_total"),
        scrape.Sum("pipeline_ingest_readings_accepted_total"),
        scrape.Sum("pipeline_ingest_readings_refused_total"),
        scrape.Sum("pipeline_streams_messages_total"),
        scrape.Sum("pipeline_streams_lag"),
        // The counter appears with its first loss; while the processors run here (their lag is exported) none is 0.
        scrape.Sum("pipeline_streams_readings_lost_to_retention_total") ?? (scrape.Sum("pipeline_streams_lag") is null ? null : 0),
        scrape.Sum("pipeline_lake_rows_total"),
        scrape.Sum("pipeline_lake_lag_seconds"),
        scrape.By("pipeline_streams_rejected_total", "reason"),
        scrape.By("pipeline_ingest_readings_refused_total", "reason"));

    public static async Task<StatusSnapshot> ReadAsync(AreaClient api, TimeProvider clock, CancellationToken cancellation) =>
        Of(new MetricsScrape(await api.MetricsAsync(cancellation)), clock.GetUtcNow());
}

internal static class OperatorEndpoints
{
    /// <summary>The page's script polls this every second to move its numbers and charts.</summary>
    public static void MapOperatorSnapshot(this IEndpointRouteBuilder web) =>
        web.MapGet("/operator/snapshot", async (AreaClient api, TimeProvider clock, HttpContext context) =>
        {
            context.Response.Headers.CacheControl = "no-store";
            return Results.Json(await StatusSnapshot.ReadAsync(api, clock, context.RequestAborted), AreaClient.Json);
        });
}
