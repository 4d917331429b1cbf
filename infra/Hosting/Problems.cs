using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Pipeline.Core.Envelope;

namespace Pipeline.Infra.Hosting;

/// <summary>RFC 9457 problem responses whose type names the reason code; GET /problems/{reason} explains each.</summary>
public static class Problems
{
    public static int StatusOf(ReasonCode reason) => reason switch
    {
        ReasonCode.TooLarge => StatusCodes.Status413PayloadTooLarge,
        ReasonCode.UnsupportedMediaType => StatusCodes.Status415UnsupportedMediaType,
        ReasonCode.RateLimited => StatusCodes.Status429TooManyRequests,
        ReasonCode.Unavailable => StatusCodes.Status503ServiceUnavailable,
        ReasonCode.UnknownDevice => StatusCodes.Status404NotFound,
        ReasonCode.SignerMismatch or ReasonCode.WrongOwner => StatusCodes.Status403Forbidden,
        ReasonCode.SeqConflict or ReasonCode.AlreadyRegistered or ReasonCode.StaleMessage => StatusCodes.Status409Conflict,
        _ => StatusCodes.Status400BadRequest,
    };

    public static ProblemHttpResult For(HttpContext context, Rejection rejection) => For(context, rejection.Code, rejection.Detail, retryAfterSeconds: 1);

    public static ProblemHttpResult For(HttpContext context, ReasonCode reason, string detail, int retryAfterSeconds, object? receipts = null)
    {
        var status = StatusOf(reason);
        if (status is StatusCodes.Status429TooManyRequests or StatusCodes.Status503ServiceUnavailable)
            context.Response.Headers.RetryAfter = retryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var extensions = new Dictionary<string, object?> { ["reason"] = reason.ToWire() };
        if (receipts is not null) extensions["receipts"] = receipts;
        return TypedResults.Problem(
            detail: detail,
            statusCode: status,
            title: reason.Describe(),
            type: $"/problems/{reason.ToWire()}",
            instance: context.Request.Path,
            extensions: extensions);
    }
}
