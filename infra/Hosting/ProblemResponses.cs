using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Pipeline.Core.Envelope;
using Pipeline.Infra.Postgres;

namespace Pipeline.Infra.Hosting;

/// <summary>What GET /problems/{reason} answers: a reason code, the status it comes with, and what it means.</summary>
public sealed record ProblemExplanation(string Reason, int Status, string Description);

/// <summary>
/// Problem responses (RFC 9457) on every port. The stages' own carry a reason code; the framework's refusals (a body
/// that does not bind, a request body Kestrel refuses, an unknown route) get the code that fits their status, with a
/// type GET /problems/{reason} explains, wherever the problem came from.
/// </summary>
public static class ProblemResponses
{
    public static IServiceCollection AddProblemResponses(this IServiceCollection services) =>
        services.AddProblemDetails(o => o.CustomizeProblemDetails = Customize);

    /// <summary>
    /// Reasons an area answers beyond <see cref="ReasonCode"/> (the marketplace's, say), for GET /problems/{reason}. A
    /// reason the core list already has keeps the core's explanation.
    /// </summary>
    public static IServiceCollection AddProblemExplanations(this IServiceCollection services, IEnumerable<ProblemExplanation> explanations)
    {
        foreach (var explanation in explanations) services.AddSingleton(explanation);
        return services;
    }

    /// <summary>
    /// Kestrel refuses a request body by throwing from the read: over the endpoint's size limit (413), cut short (400),
    /// too slow (408). Those are the client's doing and keep their status instead of becoming a logged 500. PostgreSQL
    /// unreachable or restarting is nobody's mistake and passes: 503 with Retry-After, still logged.
    /// </summary>
    public static IApplicationBuilder UseProblemResponses(this IApplicationBuilder app) => app
        .UseExceptionHandler(new ExceptionHandlerOptions
        {
            StatusCodeSelector = e => e is BadHttpRequestException bad ? bad.StatusCode
                : DatabaseFailure.Classify(e) == FailureKind.Outage ? StatusCodes.Status503ServiceUnavailable
                : StatusCodes.Status500InternalServerError,
            SuppressDiagnosticsCallback = context => context.Exception is BadHttpRequestException,
        })
        .UseStatusCodePages();

    public static IEndpointRouteBuilder MapProblemEndpoints(this IEndpointRouteBuilder app)
    {
        app.MapGet("/problems/{reason}", Results<Ok<ProblemExplanation>, NotFound> (string reason, IEnumerable<ProblemExplanation> areas) =>
                ReasonCodes.TryParse(reason, out var code) ? TypedResults.Ok(new ProblemExplanation(reason, Problems.StatusOf(code), code.Describe()))
                : areas.FirstOrDefault(e => e.Reason == reason) is { } explained ? TypedResults.Ok(explained)
                : TypedResults.NotFound())
            .WithName("ExplainProblem")
            .WithSummary("What a reason code means")
            .WithDescription("Every problem response's type is /problems/<reason>; this explains the reason, on every port.")
            .WithTags("Problems");
        return app;
    }

    private static void Customize(ProblemDetailsContext context)
    {
        var problem = context.ProblemDetails;
        // Kestrel's messages say what was wrong with the request and nothing about the server.
        if (context.Exception is BadHttpRequestException bad) problem.Detail ??= bad.Message;
        if (context.Exception is { } failure && DatabaseFailure.Classify(failure) == FailureKind.Outage)
        {
            context.HttpContext.Response.Headers.RetryAfter = "5";
            problem.Detail ??= "The database is unreachable or restarting; retry after the time given.";
        }
        if (problem.Extensions.ContainsKey("reason")) return;
        ReasonCode? reason = problem.Status switch
        {
            StatusCodes.Status400BadRequest => ReasonCode.Malformed,
            StatusCodes.Status413PayloadTooLarge => ReasonCode.TooLarge,
            StatusCodes.Status415UnsupportedMediaType => ReasonCode.UnsupportedMediaType,
            StatusCodes.Status503ServiceUnavailable => ReasonCode.Unavailable,
            _ => null,
        };
        if (reason is not { } code) return;
        problem.Extensions["reason"] = code.ToWire();
        problem.Type = $"/problems/{code.ToWire()}";
        problem.Title = code.Describe();
    }
}
