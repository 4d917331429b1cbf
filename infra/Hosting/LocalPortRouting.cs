using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Routing.Matching;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Pipeline.Infra.Hosting;

/// <summary>
/// Routes by the port a connection arrived on. RequireHost("*:port") matches the Host header, which the client writes:
/// with a forged one the registry answered on the ingest port and ingest on the API port. The local endpoint is the
/// server's own fact.
/// </summary>
public static class LocalPortRouting
{
    public static IServiceCollection AddLocalPortRouting(this IServiceCollection services)
    {
        services.TryAddEnumerable(ServiceDescriptor.Singleton<MatcherPolicy, LocalPortMatcherPolicy>());
        return services;
    }

    /// <summary>A route group whose endpoints answer only connections to <paramref name="port"/>; elsewhere they do not exist (404).</summary>
    public static RouteGroupBuilder MapGroupOnPort(this IEndpointRouteBuilder app, string prefix, int port)
    {
        // Without the policy the metadata would be ignored and every port would answer: refuse to start instead.
        if (!app.ServiceProvider.GetServices<MatcherPolicy>().OfType<LocalPortMatcherPolicy>().Any())
            throw new InvalidOperationException("Endpoints bound to a port need services.AddLocalPortRouting().");
        var group = app.MapGroup(prefix);
        group.WithMetadata(new LocalPortMetadata(port));
        return group;
    }

    private sealed record LocalPortMetadata(int Port);

    private sealed class LocalPortMatcherPolicy : MatcherPolicy, IEndpointSelectorPolicy
    {
        // After the built-in policies (host, method): it only ever removes candidates.
        public override int Order => 1_000;

        public bool AppliesToEndpoints(IReadOnlyList<Endpoint> endpoints) =>
            endpoints.Any(e => e.Metadata.GetMetadata<LocalPortMetadata>() is not null);

        public Task ApplyAsync(HttpContext httpContext, CandidateSet candidates)
        {
            var port = httpContext.Connection.LocalPort;
            for (var i = 0; i < candidates.Count; i++)
            {
                if (candidates.IsValidCandidate(i) && candidates[i].Endpoint.Metadata.GetMetadata<LocalPortMetadata>() is { } only && only.Port != port)
                    candidates.SetValidity(i, false);
            }
            return Task.CompletedTask;
        }
    }
}
