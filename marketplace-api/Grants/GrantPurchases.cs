using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;
using Pipeline.Core.Events;
using Pipeline.Marketplace.Accounts;
using Pipeline.Marketplace.Catalog;
using Pipeline.Marketplace.Sandbox;

namespace Pipeline.Marketplace.Grants;

/// <summary>
/// What a buyer asks to buy. A subscription leaves Until out: it covers data from From on, as it arrives, with
/// RowQuota rows per calendar month (UTC), until ExpiresAt. Devices and Make narrow it to some devices. ByteQuotaMegabytes,
/// when given (MB of 10⁶ bytes, to the byte: at most six decimals), also bounds the bytes delivered (per month for a
/// subscription) and is paid at the dataset's price per MB.
/// </summary>
public sealed record GrantRequest(
    string? Dataset,
    DateTimeOffset? From,
    DateTimeOffset? Until,
    BoundingBox? Box,
    IReadOnlyList<string>? Devices,
    string? Make,
    long? RowQuota,
    DateTimeOffset? ExpiresAt,
    decimal? ByteQuotaMegabytes = null);

/// <summary>Buys grants: checks the request, prices it from the catalog, and pays it from the balance in one append.</summary>
public sealed partial class GrantPurchases(MarketAccounts accounts)
{
    /// <summary>
    /// Grants an account may hold that can still deliver (not expired, not used up): the account document holds only
    /// those and every charge rewrites it, so at a credit a grant (and up to 1,000 devices each) a buyer made it grow without end.
    /// </summary>
    public const int MaxLiveGrants = 100;

    public async Task<Grant> BuyAsync(string buyerId, GrantRequest request, MarketplaceOptions options, CancellationToken cancellation)
    {
        var now = accounts.Clock.GetUtcNow();
        var errors = Errors(request, now, options).ToList();
        if (errors.Count > 0) throw new MarketRefusedException(StatusCodes.Status400BadRequest, MarketReason.InvalidRequest, string.Join(" ", errors));
        if (MarketDatasets.Find(request.Dataset!) is null)
            throw new MarketRefusedException(StatusCodes.Status404NotFound, MarketReason.UnknownDataset, $"There is no dataset '{request.Dataset}'; GET /v1/datasets lists them.");

        var grantId = ApiKeys.NewGrantId();
        var bought = await accounts.UpdateAsync(buyerId, (account, at) =>
        {
            if (account.Grants.Count(g => !g.Finished(at)) >= MaxLiveGrants)
                throw new MarketRefusedException(StatusCodes.Status409Conflict, MarketReason.TooManyGrants,
                    $"The account holds {MaxLiveGrants} grants that can still deliver rows, as many as an account may; use one up or let it expire before buying another.");
            var months = request.Until is null ? GrantPricing.MonthsBetween(at, request.ExpiresAt!.Value) : 1;
            var byteCredits = ByteQuota(request) is { } bytes ? GrantPricing.BytePrice(bytes, options.MegabytePriceOf(request.Dataset!), months) : 0;
            var price = GrantPricing.Price(request.RowQuota!.Value, options.PriceOf(request.Dataset!), months) + byteCredits;
            if (price > account.Balance)
                throw new MarketRefusedException(StatusCodes.Status402PaymentRequired, MarketReason.InsufficientCredit,
                    $"The grant costs {price} credits and the balance is {account.Balance}; add credits or buy fewer rows.");
            var box = request.Box;
            return [new GrantPurchased(buyerId, grantId, request.Dataset!, request.From!.Value, request.Until, box?.South, box?.West, box?.North, box?.East,
                request.Devices?.Select(d => d.ToLowerInvariant()).Distinct().Order(StringComparer.Ordinal).ToList(), request.Make, request.RowQuota!.Value,
                request.ExpiresAt!.Value, price, at, ByteQuota(request), byteCredits)];
        }, cancellation);
        return bought.FindGrant(grantId)!;
    }

    private static IEnumerable<string> Errors(GrantRequest request, DateTimeOffset now, MarketplaceOptions options)
    {
        if (string.IsNullOrEmpty(request.Dataset)) yield return "dataset is required.";
        if (request.From is not { } from) yield return "from (the first device time covered) is required.";
        else if (request.Until is { } until && until <= from) yield return "until must be after from.";
        if (request.RowQuota is not { } quota || quota < 1 || quota > options.MaxGrantRows) yield return $"rowQuota must be between 1 and {options.MaxGrantRows}.";
        if (request.ByteQuotaMegabytes is { } megabytes && (megabytes <= 0 || megabytes > options.MaxGrantMegabytes || ByteQuota(request) is null))
            yield return $"byteQuotaMegabytes, when given, is more than 0 and at most {options.MaxGrantMegabytes}, with at most six decimals (a byte).";
        if (request.ExpiresAt is not { } expires || expires <= now) yield return "expiresAt must be in the future.";
        else if (expires > now.AddYears(5)) yield return "expiresAt may be at most 5 years ahead.";
        if (request.Box is { } box) foreach (var error in box.Errors()) yield return error;
        if (request.Devices is { } devices)
        {
            if (devices.Count is 0 or > 1000) yield return "devices, when given, lists 1 to 1000 device addresses.";
            foreach (var device in devices.Where(d => d is null || !DeviceAddress().IsMatch(d)).Take(3)) yield return $"Device '{device}' is not 0x and 40 hex digits.";
        }
        if (request.Make is { } make && (make.Length is 0 or > 64 || make.Any(char.IsControl))) yield return "make, when given, is 1 to 64 printable characters.";
    }

    /// <summary>The byte quota in bytes, null when none is asked or it is not a whole number of bytes (checked within the maximum first).</summary>
    private static long? ByteQuota(GrantRequest request) =>
        request.ByteQuotaMegabytes * GrantPricing.BytesPerMegabyte is { } bytes && bytes == decimal.Truncate(bytes) ? (long)bytes : null;

    [GeneratedRegex("^0x[0-9a-fA-F]{40}$")]
    private static partial Regex DeviceAddress();
}
