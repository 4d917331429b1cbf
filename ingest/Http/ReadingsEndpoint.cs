using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.Extensions.Options;
using Pipeline.Core.Envelope;
using Pipeline.Infra.Hosting;
using Pipeline.Ingest.Gateway;

namespace Pipeline.Ingest.Http;

/// <summary>The body of a 202: how many readings were accepted, already there, refused and not acknowledged, and a receipt for each.</summary>
public sealed record ReadingsResponse(int Accepted, int Duplicate, int Refused, int Unavailable, IReadOnlyList<Receipt> Receipts);

/// <summary>
/// One signed reading as it travels: the payload's exact JSON text and the EIP-191 signature over its bytes. Here for
/// the OpenAPI document; the endpoint reads the raw body, since the signature covers the payload text as sent.
/// </summary>
public sealed record ReadingEnvelope(string Payload, string Sig);

/// <summary>
/// POST /v1/readings: one envelope, a JSON array, or NDJSON, optionally gzip. 202 only once the broker acknowledged
/// every accepted reading; otherwise a problem response (RFC 9457) whose receipts say what became of each reading.
/// </summary>
public static class ReadingsEndpoint
{
    public const string Transport = "http";

    public static async Task<Results<Accepted<ReadingsResponse>, ProblemHttpResult>> HandleAsync(HttpContext context, ReadingGateway gateway, ClientRateLimiter clients, IOptions<IngestOptions> options, IngestMetrics metrics)
    {
        var settings = options.Value;
        var client = context.Connection.RemoteIpAddress?.ToString() ?? "unknown";
        if (!clients.TryAcquire(client))
            return Refuse(ReasonCode.RateLimited, $"More than {settings.ClientRequestsPerSecond} requests/s from {client}; retry after {settings.RetryAfterSeconds} s.");

        var format = RequestBody.FormatOf(context.Request);
        if (format is null)
            return Refuse(ReasonCode.UnsupportedMediaType, "Send Content-Type: application/json (one envelope or an array) or application/x-ndjson (one envelope per line), UTF-8.");

        var (body, unreadable) = await RequestBody.ReadAsync(context.Request, settings.Limits.MaxBatchBytes, context.RequestAborted);
        if (unreadable is not null) return Refuse(unreadable.Code, unreadable.Detail);
        using (body)
        {
            var batch = BatchParser.Parse(body!.Memory, format.Value, settings.Limits);
            if (batch.Error is { } error) return Refuse(error.Code, error.Detail);

            var result = await gateway.SubmitAsync(batch.Items, new Sender(Transport, client), context.RequestAborted);
            var response = new ReadingsResponse(result.Accepted, result.Duplicates, result.Refused, result.Unavailable, result.Receipts);
            if (result.Unavailable > 0)
                return Problems.For(context, ReasonCode.Unavailable,
                    $"The broker did not acknowledge {result.Unavailable} of {batch.Items.Count} readings; send those again after {settings.RetryAfterSeconds} s. The receipts say which were stored.",
                    settings.RetryAfterSeconds, response.Receipts);
            if (result.Accepted + result.Duplicates == 0)
                return RefuseAll(context, batch.Items.Count, result.Receipts, settings.RetryAfterSeconds);
            return TypedResults.Accepted((string?)null, response);
        }

        ProblemHttpResult Refuse(ReasonCode reason, string detail)
        {
            metrics.Refused(Transport, reason.ToWire());
            return Problems.For(context, reason, detail, settings.RetryAfterSeconds);
        }
    }

    /// <summary>No reading was accepted: the problem's reason is the readings' common reason, or the most frequent one.</summary>
    private static ProblemHttpResult RefuseAll(HttpContext context, int count, IReadOnlyList<Receipt> receipts, int retryAfterSeconds)
    {
        var reasons = receipts.GroupBy(r => r.Reason!).OrderByDescending(g => g.Count()).ToList();
        ReasonCodes.TryParse(reasons[0].Key, out var reason);
        var detail = count == 1
            ? receipts[0].Detail!
            : $"None of the {count} readings was accepted ({string.Join(", ", reasons.Select(g => $"{g.Count()} {g.Key}"))}); each receipt says why.";
        return Problems.For(context, reason, detail, retryAfterSeconds, count == 1 ? null : receipts);
    }
}
