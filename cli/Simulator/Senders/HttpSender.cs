using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;

namespace Pipeline.Cli.Simulator.Senders;

/// <summary>
/// Posts readings as NDJSON to the ingest edge and reads the receipts. Does what a well-behaved device does when told
/// to wait: on 503 and 429 it waits the Retry-After and sends again what was not acknowledged.
/// </summary>
public sealed class HttpSender(string ingestUrl, SimulationStats stats) : IReadingSender
{
    private readonly HttpClient _client = new() { BaseAddress = new Uri(ingestUrl.TrimEnd('/') + "/"), Timeout = TimeSpan.FromSeconds(30) };

    public async Task SendAsync(IReadOnlyList<Outgoing> batch, CancellationToken cancellation)
    {
        var pending = batch.ToList();
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
                var receipts = await ReadReceiptsAsync(response, cancellation);
                if (receipts is null)
                {
                    if (response.StatusCode is HttpStatusCode.TooManyRequests or HttpStatusCode.ServiceUnavailable)
                    {
                        stats.AddRetried(pending.Count);
                        await Task.Delay(RetryAfter(response), cancellation);
                        continue;
                    }
                    // A whole single-reading request refused: the problem's reason is the reading's.
                    var reason = await ReasonAsync(response, cancellation);
                    foreach (var item in pending) Refuse(item, reason);
                    return;
                }
                var retry = new List<Outgoing>();
                for (var i = 0; i < pending.Count && i < receipts.Count; i++)
                {
                    switch (receipts[i].Status)
                    {
                        case "accepted":
                            pending[i].Entry.Edge = "accepted";
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

    private static async Task<List<Receipt>?> ReadReceiptsAsync(HttpResponseMessage response, CancellationToken cancellation)
    {
        if (response.Content.Headers.ContentLength == 0) return null;
        var body = await response.Content.ReadFromJsonAsync<JsonElement>(cancellation);
        return body.ValueKind == JsonValueKind.Object && body.TryGetProperty("receipts", out var receipts)
            ? receipts.Deserialize<List<Receipt>>(JsonSerializerOptions.Web)
            : null;
    }

    private static async Task<string> ReasonAsync(HttpResponseMessage response, CancellationToken cancellation)
    {
        try
        {
            var body = await response.Content.ReadFromJsonAsync<JsonElement>(cancellation);
            return body.TryGetProperty("reason", out var reason) ? reason.GetString() ?? "unknown" : $"http_{(int)response.StatusCode}";
        }
        catch (JsonException)
        {
            return $"http_{(int)response.StatusCode}";
        }
    }

    public ValueTask DisposeAsync()
    {
        _client.Dispose();
        return ValueTask.CompletedTask;
    }
}
