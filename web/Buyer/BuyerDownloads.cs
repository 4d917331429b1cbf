using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;
using Pipeline.Marketplace;
using Pipeline.Web.Api;

namespace Pipeline.Web.Buyer;

/// <summary>
/// Downloads that pass through the web app with the buyer's key from its cookie: query results (charged by the
/// marketplace like any query; a form post, so antiforgery applies), export files and the live feed.
/// </summary>
internal static class BuyerDownloads
{
    public static void MapBuyerDownloads(this IEndpointRouteBuilder web)
    {
        // The SQL editor's form, sent here by its download buttons.
        web.MapPost("/buyer/download", async ([FromForm(Name = "Query.Grant")] string? grant, [FromForm(Name = "Query.Sql")] string? sql, [FromForm(Name = "format")] string? requested,
            AreaClient api, VisitorCookies cookies, HttpContext context) =>
        {
            if (cookies.BuyerKey(context) is not { } key) return SignInFirst();
            var format = requested is "parquet" ? "parquet" : "csv";
            var response = await api.QueryAsync(key, new QueryRequest(grant, sql, format), context.RequestAborted);
            context.Response.RegisterForDispose(response);
            foreach (var header in new[] { "X-Rows", "X-Credits", "X-Truncated", "X-Lake-Checkpoint" })
                if (response.Headers.TryGetValues(header, out var values)) context.Response.Headers[header] = values.First();
            return Results.Stream(await response.Content.ReadAsStreamAsync(context.RequestAborted), response.Content.Headers.ContentType?.ToString(),
                $"{grant}.{format}");
        }).AddEndpointFilter(ShowRefusals);

        web.MapGet("/buyer/exports/{id}/{**path}", async (string id, string path, AreaClient api, VisitorCookies cookies, HttpContext context) =>
        {
            if (cookies.BuyerKey(context) is not { } key) return SignInFirst();
            // Only the three kinds of download an export has; the marketplace checks the file against the manifest.
            var upstream = path switch
            {
                "manifest" or "manifest.sig" => $"/v1/exports/{Uri.EscapeDataString(id)}/{path}",
                _ when path.StartsWith("files/", StringComparison.Ordinal) => $"/v1/exports/{Uri.EscapeDataString(id)}/files/{string.Join('/', path["files/".Length..].Split('/').Select(Uri.EscapeDataString))}",
                _ => null,
            };
            if (upstream is null) return Results.NotFound();
            var response = await api.StreamAsync(upstream, key, context.RequestAborted);
            context.Response.RegisterForDispose(response);
            return Results.Stream(await response.Content.ReadAsStreamAsync(context.RequestAborted), response.Content.Headers.ContentType?.ToString(), Path.GetFileName(path));
        }).AddEndpointFilter(ShowRefusals);

        web.MapGet("/buyer/grants/{id}/feed", async (string id, AreaClient api, VisitorCookies cookies, HttpContext context) =>
        {
            if (cookies.BuyerKey(context) is not { } key) return SignInFirst();
            var response = await api.StreamAsync($"/v1/grants/{Uri.EscapeDataString(id)}/feed", key, context.RequestAborted);
            context.Response.RegisterForDispose(response);
            context.Response.Headers.CacheControl = "no-store";
            return Results.Stream(await response.Content.ReadAsStreamAsync(context.RequestAborted), "text/event-stream");
        }).AddEndpointFilter(ShowRefusals);
    }

    private static IResult SignInFirst() =>
        Results.Problem(statusCode: StatusCodes.Status401Unauthorized, title: "Sign in first", detail: "Sign in with your API key on /buyer, then try again.",
            extensions: new Dictionary<string, object?> { ["reason"] = "no_key" });

    // The marketplace's refusal passed on as it was given (status, reason, detail), never as a 500.
    private static async ValueTask<object?> ShowRefusals(EndpointFilterInvocationContext invocation, EndpointFilterDelegate next)
    {
        try
        {
            return await next(invocation);
        }
        catch (ApiProblemException problem)
        {
            return Results.Problem(statusCode: (int)problem.Status, title: problem.Reason, detail: problem.Detail,
                extensions: new Dictionary<string, object?> { ["reason"] = problem.Reason });
        }
    }
}
