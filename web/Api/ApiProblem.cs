using System.Net;
using System.Text.Json;

namespace Pipeline.Web.Api;

/// <summary>An area's refusal (an RFC 9457 problem) as the web app shows it to a person: the reason code and the detail, never a stack trace.</summary>
public sealed class ApiProblemException(HttpStatusCode status, string reason, string detail) : Exception(detail)
{
    public HttpStatusCode Status { get; } = status;
    public string Reason { get; } = reason;
    public string Detail { get; } = detail;

    public static async Task<ApiProblemException> ReadAsync(HttpResponseMessage response, CancellationToken cancellation)
    {
        var body = await response.Content.ReadAsStringAsync(cancellation);
        try
        {
            using var problem = JsonDocument.Parse(body);
            var root = problem.RootElement;
            var reason = root.TryGetProperty("reason", out var r) ? r.GetString() : null;
            var detail = root.TryGetProperty("detail", out var d) ? d.GetString() : root.TryGetProperty("title", out var t) ? t.GetString() : null;
            return new(response.StatusCode, reason ?? StatusReason(response.StatusCode), detail ?? response.ReasonPhrase ?? "");
        }
        catch (JsonException)
        {
            // Not a problem document (a 404 of a route that does not exist yet, say): the status is all there is.
            return new(response.StatusCode, StatusReason(response.StatusCode), $"{(int)response.StatusCode} {response.ReasonPhrase} from {response.RequestMessage?.RequestUri?.AbsolutePath}");
        }
    }

    private static string StatusReason(HttpStatusCode status) => status == HttpStatusCode.NotFound ? "not_found" : $"http_{(int)status}";
}
