using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Pipeline.Core.Envelope;

namespace Pipeline.Simulator.Senders;

/// <summary>
/// Posts readings as NDJSON to the ingest edge and reads the receipts. Does what a well-behaved device does when told
/// to wait: on 503 and 429 it waits the Retry-After and sends again what was not acknowledged.
/// </summary>
public sealed class HttpSender(string ingestUrl, SimulationStats stats) : IReadingSender
{
    private readonly HttpClient _client = new() { BaseAddress = new Uri(ingestUrl.TrimEnd('/') + "/"), Timeout = TimeSpan.FromSeconds(30) };

    public async Task SendAsync(IReadOnlyList<Outgoing> batch, CancellationToken cancellation)
    {
        // The edge refuses a request of more readings than a batch may hold as a whole, without receipts.
        foreach (var chunk in batch.Chunk(EnvelopeLimits.Default.MaxBatchReadings)) await SendChunkAsync(chunk, cancellation);
    }

    private async Task SendChunkAsync(Outgoing[] chunk, CancellationToken cancellation)
    {
        var pending = chunk.ToList();
        stats.AddSent(pending.Count);
        while (pending.Count > 0 && !cancellation.IsCancellationRequested)
        {
            var body = new MemoryStream();
            foreach (var item in pending)
            {
                body.Write(item.Envelope);
                body.WriteByte((byte)'\n');
            }
            var content = new ByteArrayContent(body.ToArray());
            content.Headers.ContentType = new MediaTypeHeaderValue("application/x-ndjson");
            HttpResponseMessage response;
            try
            {
                response = await _client.PostAsync("v1/readings", content, cancellation);
            }
            catch (Exception e) when (!cancellation.IsCancellationRequested)
            {
                // The edge is down, restarting or dropped the connection: wait and send the same readings again.
                stats.AddRetried(pending.Count);
                stats.Fail(e, retried: true);
                await Task.Delay(TimeSpan.FromSeconds(1), cancellation);
                continue;
            }
            using (response)
            {
                var answer = await BodyAsync(response, cancellation);
                var receipts = answer is { } json && json.TryGetProperty("receipts", out var list) ? list.Deserialize<List<Receipt>>(JsonSerializerOptions.Web) : null;
                if (receipts is null)
                {
                    if (response.StatusCode is HttpStatusCode.TooManyRequests or HttpStatusCode.ServiceUnavailable)
                    {
                        stats.AddRetried(pending.Count);
                        await Task.Delay(RetryAfter(response), cancellation);
                        continue;
                    }
                    // A whole single-reading request refused: the problem's reason is the reading's.
                    var reason = answer is { } problem && problem.TryGetProperty("reason", out var code) ? code.GetString() ?? "unknown" : $"http_{(int)response.StatusCode}";
                    foreach (var item in pending) Refuse(item, reason);
                    return;
                }
                var retry = new List<Outgoing>();
                for (var i = 0; i < pending.Count && i < receipts.Count; i++)
                {
                    switch (receipts[i].Status)
                    {
                        case "accepted" or "duplicate":
                            // Duplicate: the broker already had it from an earlier send; nothing to resend.
                            pending[i].Entry.Edge = receipts[i].Status;
                            stats.AddAcknowledged(1);
                            break;
                        case "refused" when receipts[i].Reason == "rate_limited":
                        case "unavailable":
                            retry.Add(pending[i]);
                            break;
                        default:
                            Refuse(pending[i], receipts[i].Reason ?? "unknown");
                            break;
                    }
                }
                if (retry.Count > 0)
                {
                    stats.AddRetried(retry.Count);
                    await Task.Delay(RetryAfter(response), cancellation);
                }
                pending = retry;
            }
        }
    }

    private void Refuse(Outgoing item, string reason)
    {
        item.Entry.Edge = "refused:" + reason;
        stats.Refuse(reason);
    }

    private static TimeSpan RetryAfter(HttpResponseMessage response) => response.Headers.RetryAfter?.Delta ?? TimeSpan.FromSeconds(1);

    private sealed record Receipt(int Index, string Status, string? Id, string? Reason);

    /// <summary>The response body as JSON, read once; null when it is empty or not JSON.</summary>
    private static async Task<JsonElement?> BodyAsync(HttpResponseMessage response, CancellationToken cancellation)
    {
        var text = await response.Content.ReadAsStringAsync(cancellation);
        if (text.Length == 0) return null;
        try
        {
            using var document = JsonDocument.Parse(text);
            return document.RootElement.ValueKind == JsonValueKind.Object ? document.RootElement.Clone() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    public ValueTask DisposeAsync()
    {
        _client.Dispose();
        return ValueTask.CompletedTask;
    }
}
