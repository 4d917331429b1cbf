using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.RateLimiting;
using Microsoft.Extensions.Options;
using Pipeline.Marketplace.Accounts;

namespace Pipeline.Marketplace;

/// <summary>
/// A token bucket per API key (the key's id, so a buyer's keys are limited one by one), or per client address for
/// requests without a key; refused with a problem (rate_limited) and Retry-After. Its own OnRejected leaves the other
/// areas' limits as they are.
/// </summary>
public sealed class MarketRateLimit(IOptions<MarketplaceOptions> options) : IRateLimiterPolicy<string>
{
    public const string Policy = "market-requests";

    public RateLimitPartition<string> GetPartition(HttpContext context)
    {
        var key = context.User.FindFirst(MarketKeyHandler.KeyIdClaim)?.Value is { } id ? "key:" + id : "ip:" + context.Connection.RemoteIpAddress;
        var limits = options.Value;
        return RateLimitPartition.GetTokenBucketLimiter(key, _ => new TokenBucketRateLimiterOptions
        {
            TokenLimit = limits.RequestBurst,
            TokensPerPeriod = limits.RequestsPerSecond,
            ReplenishmentPeriod = TimeSpan.FromSeconds(1),
            QueueLimit = 0,
            AutoReplenishment = true,
        });
    }

    public Func<OnRejectedContext, CancellationToken, ValueTask>? OnRejected => (rejected, _) =>
    {
        var context = rejected.HttpContext;
        var wait = rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter) ? Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)) : 1;
        context.Response.Headers.RetryAfter = wait.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var limits = options.Value;
        return new ValueTask(MarketProblems.For(context, StatusCodes.Status429TooManyRequests, MarketReason.RateLimited,
            $"More than {limits.RequestsPerSecond} requests per second (burst {limits.RequestBurst}) for this key; retry after {wait} s.").ExecuteAsync(context));
    };
}
