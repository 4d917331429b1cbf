using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Pipeline.Infra.Hosting;
using Pipeline.Web.Api;
using Pipeline.Web.Buyer;
using Pipeline.Web.Contributor;
using Pipeline.Web.Operator;

namespace Pipeline.Web;

/// <summary>Where the web app finds the areas' APIs. Bound from the "Web" section; by default the API port of this host.</summary>
public sealed class WebOptions
{
    public const string Section = "Web";

    /// <summary>The API the pages call on a visitor's behalf; empty means this host's own API port (Endpoints).</summary>
    public string? ApiUrl { get; set; }
}

/// <summary>Composes the web app on the API host: <c>AddWebApp</c> registers it, <c>MapWebApp</c> serves it at / on the API port.</summary>
public static class WebAppRegistration
{
    public static IServiceCollection AddWebApp(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<WebOptions>().BindConfiguration(WebOptions.Section)
            .Validate(o => string.IsNullOrEmpty(o.ApiUrl) || Uri.TryCreate(o.ApiUrl, UriKind.Absolute, out _), "Web:ApiUrl must be an absolute URL.")
            .ValidateOnStart();
        services.AddRazorComponents();
        services.AddHttpClient<AreaClient>((provider, http) =>
        {
            var web = provider.GetRequiredService<IOptions<WebOptions>>().Value;
            var endpoints = configuration.GetSection(EndpointsOptions.Section).Get<EndpointsOptions>() ?? new EndpointsOptions();
            http.BaseAddress = new Uri(string.IsNullOrEmpty(web.ApiUrl) ? Loopback(endpoints) : web.ApiUrl);
            http.Timeout = TimeSpan.FromSeconds(60);
        }).RemoveAllLoggers();   // every page makes a few calls: the API logs its own requests already
        services.AddSingleton<VisitorCookies>();
        return services;
    }

    public static WebApplication MapWebApp(this WebApplication app, int port)
    {
        app.UseAntiforgery();
        var web = app.MapGroupOnPort("", port).WithTags("Web").ExcludeFromDescription();
        web.MapGet("/assets/{name}", WebAssets.Serve);
        web.MapBuyerDownloads();
        web.MapContributorWallet();
        web.MapOperatorSnapshot();
        web.MapRazorComponents<App>();
        return app;
    }

    // A host listening on every interface is still reached by itself on loopback.
    private static string Loopback(EndpointsOptions endpoints) =>
        endpoints.ListenAddress is "0.0.0.0" or "::" ? $"http://127.0.0.1:{endpoints.ApiPort}" : endpoints.ApiUrl;
}
