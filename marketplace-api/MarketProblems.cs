using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;

namespace Pipeline.Marketplace;

/// <summary>The marketplace's reasons for refusing a request: the problem response's <c>reason</c>, firm once published.</summary>
public static class MarketReason
{
    public const string NoKey = "no_key";
    public const string UnknownKey = "unknown_key";
    public const string RevokedKey = "revoked_key";
    public const string WrongRole = "wrong_role";
    public const string RateLimited = "rate_limited";
    public const string InvalidRequest = "invalid_request";
    public const string UnknownBuyer = "unknown_buyer";
    public const string UnknownKeyId = "unknown_key_id";
    public const string UnknownDataset = "unknown_dataset";
    public const string UnknownGrant = "unknown_grant";
    public const string InsufficientCredit = "insufficient_credit";
    public const string QuotaExhausted = "quota_exhausted";
    public const string GrantExpired = "grant_expired";
    public const string NotAcceptable = "not_acceptable";
    public const string UnknownExport = "unknown_export";
    public const string StaleChallenge = "stale_challenge";
    public const string BadSignature = "bad_signature";
    public const string UnknownFile = "unknown_file";
}

/// <summary>RFC 9457 problem responses with a <c>reason</c>, as the rest of the API answers.</summary>
public static class MarketProblems
{
    public static ProblemHttpResult For(HttpContext context, int status, string reason, string detail) =>
        TypedResults.Problem(
            detail: detail,
            statusCode: status,
            title: reason.Replace('_', ' '),
            type: $"/problems/{reason}",
            instance: context.Request.Path,
            extensions: new Dictionary<string, object?> { ["reason"] = reason });

    public static ProblemHttpResult Invalid(HttpContext context, string detail) => For(context, StatusCodes.Status400BadRequest, MarketReason.InvalidRequest, detail);
}
