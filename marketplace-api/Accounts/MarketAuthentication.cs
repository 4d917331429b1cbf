using System.Security.Claims;
using System.Text.Encodings.Web;
using Marten;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Pipeline.Marketplace.Accounts;

/// <summary>
/// Authenticates `Authorization: Bearer &lt;key&gt;`: the operator's key (dmo_…) or a buyer's API key (dmk_…), told apart
/// by their prefix and checked against their stored SHA-256. A refusal is a problem response whose reason says which:
/// no key, a key nobody holds, a revoked key, or a key of the wrong role.
/// </summary>
public sealed class MarketKeyHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, IDocumentStore store, BuyerKeyCache keys, OperatorKey operatorKey, Contributors.ContributorLogin contributors)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "market-key";
    public const string OperatorPolicy = "market-operator";
    public const string BuyerPolicy = "market-buyer";
    public const string ContributorPolicy = "market-contributor";
    public const string AddressClaim = "address";
    public const string BuyerIdClaim = "buyer_id";
    public const string KeyIdClaim = "key_id";
    private const string FailureItem = "market-key-failure";

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var header = Request.Headers.Authorization.ToString();
        if (header.Length == 0) return AuthenticateResult.NoResult();
        if (!header.StartsWith("Bearer ", StringComparison.Ordinal)) return Fail(MarketReason.UnknownKey, "The Authorization header must be 'Bearer <key>'.");
        var key = BearerToken(Request);

        if (key.StartsWith(ApiKeys.OperatorPrefix, StringComparison.Ordinal))
            return operatorKey.Matches(key)
                ? Success(new Claim(ClaimTypes.Role, "operator"), new Claim(KeyIdClaim, "operator"))
                : Fail(MarketReason.UnknownKey, "This is not the operator key.");
        if (key.StartsWith(Contributors.ContributorLogin.SessionPrefix, StringComparison.Ordinal))
            return await contributors.AuthenticateAsync(key, Context.RequestAborted) is { } address
                ? Success(new Claim(ClaimTypes.Role, "contributor"), new Claim(AddressClaim, address), new Claim(KeyIdClaim, "session:" + address))
                : Fail(MarketReason.UnknownKey, "This contributor session is unknown or expired; log in again (POST /v1/contributors/challenge).");
        if (!key.StartsWith(ApiKeys.BuyerPrefix, StringComparison.Ordinal) || key.Length > 100)
            return Fail(MarketReason.UnknownKey, $"An API key starts with {ApiKeys.BuyerPrefix} (a buyer) or {ApiKeys.OperatorPrefix} (the operator).");

        var hash = ApiKeys.Hash(key);
        if (keys.TryGet(hash, out var buyerId, out var keyId)) return Success(new Claim(ClaimTypes.Role, "buyer"), new Claim(BuyerIdClaim, buyerId), new Claim(KeyIdClaim, keyId));
        var revocations = keys.Revocations;
        await using var session = store.QuerySession();
        var found = await session.Query<BuyerKey>().Where(k => k.Hash == hash).FirstOrDefaultAsync(Context.RequestAborted);
        if (found is null) return Fail(MarketReason.UnknownKey, "No buyer holds this API key.");
        if (found.RevokedAt is { } revoked) return Fail(MarketReason.RevokedKey, $"This API key was revoked at {revoked:O}; use another key of the account or ask the operator for one.");
        keys.Add(hash, found.BuyerId, found.Id, revocations);
        return Success(new Claim(ClaimTypes.Role, "buyer"), new Claim(BuyerIdClaim, found.BuyerId), new Claim(KeyIdClaim, found.Id));
    }

    /// <summary>The key or token of an `Authorization: Bearer …` header (empty without one).</summary>
    public static string BearerToken(HttpRequest request) =>
        request.Headers.Authorization.ToString() is var header && header.StartsWith("Bearer ", StringComparison.Ordinal) ? header["Bearer ".Length..].Trim() : "";

    private AuthenticateResult Success(params Claim[] claims) =>
        AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(new ClaimsIdentity(claims, SchemeName)), SchemeName));

    private AuthenticateResult Fail(string reason, string detail)
    {
        Context.Items[FailureItem] = (reason, detail);
        return AuthenticateResult.Fail(detail);
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        var (reason, detail) = Context.Items[FailureItem] as (string, string)?
            ?? (MarketReason.NoKey, "This needs an API key: send 'Authorization: Bearer <key>'.");
        Response.Headers.WWWAuthenticate = "Bearer";
        return MarketProblems.For(Context, StatusCodes.Status401Unauthorized, reason, detail).ExecuteAsync(Context);
    }

    protected override Task HandleForbiddenAsync(AuthenticationProperties properties) =>
        MarketProblems.For(Context, StatusCodes.Status403Forbidden, MarketReason.WrongRole,
            "This key's role (operator, buyer or contributor) may not do this; use the key the route's documentation names.").ExecuteAsync(Context);
}

public static class MarketClaims
{
    public static string BuyerId(this ClaimsPrincipal user) => user.FindFirstValue(MarketKeyHandler.BuyerIdClaim) ?? throw new InvalidOperationException("Not a buyer.");

    public static string ContributorAddress(this ClaimsPrincipal user) => user.FindFirstValue(MarketKeyHandler.AddressClaim) ?? throw new InvalidOperationException("Not a contributor.");
}
