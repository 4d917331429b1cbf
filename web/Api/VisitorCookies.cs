using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Http;

namespace Pipeline.Web.Api;

/// <summary>
/// The credentials a visitor signed in with, kept in HttpOnly, SameSite=Strict cookies encrypted and authenticated by
/// ASP.NET Core data protection: the browser's script never sees a buyer's key or a contributor's session token.
/// </summary>
public sealed class VisitorCookies(IDataProtectionProvider protection, TimeProvider clock)
{
    public const string BuyerCookie = "depin-buyer";
    public const string ContributorCookie = "depin-contributor";
    private readonly IDataProtector _protector = protection.CreateProtector("Pipeline.Web.VisitorCookies.v1");

    public string? BuyerKey(HttpContext context) => Read(context, BuyerCookie);

    public void SignInBuyer(HttpContext context, string key) => Write(context, BuyerCookie, key, TimeSpan.FromHours(12));

    /// <summary>The contributor's session token and the address it is for, or null.</summary>
    public (string Token, string Address)? Contributor(HttpContext context) =>
        Read(context, ContributorCookie)?.Split('|') is [var token, var address] ? (token, address) : null;

    public void SignInContributor(HttpContext context, string token, string address, DateTimeOffset expiresAt) =>
        Write(context, ContributorCookie, $"{token}|{address}", expiresAt - clock.GetUtcNow());

    public static void SignOut(HttpContext context, string cookie) => context.Response.Cookies.Delete(cookie, new CookieOptions { Path = "/" });

    private string? Read(HttpContext context, string cookie)
    {
        if (context.Request.Cookies[cookie] is not { Length: > 0 } sealedValue) return null;
        try
        {
            return _protector.Unprotect(sealedValue);
        }
        catch (System.Security.Cryptography.CryptographicException)
        {
            return null;   // a cookie from before a key change, or forged: the visitor signs in again
        }
    }

    private void Write(HttpContext context, string cookie, string value, TimeSpan lifetime) =>
        context.Response.Cookies.Append(cookie, _protector.Protect(value), new CookieOptions
        {
            HttpOnly = true,
            SameSite = SameSiteMode.Strict,
            Secure = context.Request.IsHttps,
            Path = "/",
            MaxAge = lifetime,
        });
}
