using System.Net.Http.Headers;
using System.Text.Json;

namespace Pipeline.Cli.Commands;

/// <summary>A problem the marketplace answered (RFC 9457): its reason and detail, which the command line prints as one line.</summary>
public sealed class MarketplaceProblemException(int status, string reason, string detail)
    : InvalidOperationException($"{reason}: {detail} (HTTP {status})")
{
    public int Status { get; } = status;
    public string Reason { get; } = reason;
}

/// <summary>The marketplace API as a buyer's client calls it: a base address and a key.</summary>
public sealed class MarketplaceClient(Uri api, string? key) : IDisposable
{
    private readonly HttpClient _http = new() { BaseAddress = api, Timeout = Timeout.InfiniteTimeSpan };

    /// <summary>Sends a request; a problem response becomes a <see cref="MarketplaceProblemException"/>. The body is not read yet.</summary>
    public async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, object? body, CancellationToken cancellation, string? accept = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (key is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        if (accept is not null) request.Headers.Accept.ParseAdd(accept);
        if (body is not null) request.Content = JsonContent.Create(body);
        HttpResponseMessage response;
        try
        {
            response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellation);
        }
        catch (HttpRequestException e)
        {
            throw new HttpRequestException($"The marketplace API at {api} did not answer ({e.Message}); is `depin up` running, and is --api right?", e);
        }
        if (response.IsSuccessStatusCode) return response;
        using (response) throw await ProblemAsync(response, cancellation);
    }

    public async Task<JsonElement> JsonAsync(HttpMethod method, string path, object? body, CancellationToken cancellation)
    {
        using var response = await SendAsync(method, path, body, cancellation);
        return await response.Content.ReadFromJsonAsync<JsonElement>(cancellation);
    }

    public async Task<byte[]> BytesAsync(string path, CancellationToken cancellation)
    {
        using var response = await SendAsync(HttpMethod.Get, path, null, cancellation);
        return await response.Content.ReadAsByteArrayAsync(cancellation);
    }

    private static async Task<MarketplaceProblemException> ProblemAsync(HttpResponseMessage response, CancellationToken cancellation)
    {
        var status = (int)response.StatusCode;
        var text = await response.Content.ReadAsStringAsync(cancellation);
        try
        {
            var problem = JsonDocument.Parse(text).RootElement;
            var reason = problem.TryGetProperty("reason", out var r) ? r.GetString() : null;
            var detail = problem.TryGetProperty("detail", out var d) ? d.GetString() : problem.TryGetProperty("title", out var t) ? t.GetString() : null;
            return new MarketplaceProblemException(status, reason ?? "http_" + status, detail ?? response.ReasonPhrase ?? "");
        }
        catch (JsonException)
        {
            return new MarketplaceProblemException(status, "http_" + status, text.Length > 200 ? text[..200] : text);
        }
    }

    public void Dispose() => _http.Dispose();
}
