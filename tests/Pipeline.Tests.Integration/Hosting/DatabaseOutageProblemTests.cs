using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Npgsql;
using Pipeline.Infra.Hosting;

namespace Pipeline.Tests.Integration.Hosting;

/// <summary>
/// PostgreSQL gone (a restart, a failover) is nobody's mistake: a request that needed it is a 503 problem with
/// Retry-After, not a 500 — `depin chaos` saw the registry answer 500 while PostgreSQL restarted (issue 16).
/// </summary>
[Trait("Category", "Integration")]
public sealed class DatabaseOutageProblemTests
{
    [Fact]
    public async Task Request_WhenPostgresIsUnreachable_IsA503ProblemWithRetryAfter_Issue16()
    {
        await using var unreachable = NpgsqlDataSource.Create($"Host=127.0.0.1;Port={ClosedPort()};Username=depin;Timeout=2");
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Services.AddProblemResponses();
        await using var app = builder.Build();
        app.UseProblemResponses();
        app.MapGet("/needs-the-database", async () =>
        {
            await using var connection = await unreachable.OpenConnectionAsync();
            return Results.Ok();
        });
        app.MapGet("/fails-otherwise", IResult () => throw new InvalidOperationException("a bug"));
        await app.StartAsync();
        using var client = new HttpClient { BaseAddress = new Uri(app.Urls.Single()) };

        var response = await client.GetAsync("/needs-the-database");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        Assert.Equal(TimeSpan.FromSeconds(5), response.Headers.RetryAfter?.Delta);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("unavailable", problem.GetProperty("reason").GetString());
        Assert.Equal("/problems/unavailable", problem.GetProperty("type").GetString());

        // Anything else is still a 500: only the database's absence is turned into "retry later".
        Assert.Equal(HttpStatusCode.InternalServerError, (await client.GetAsync("/fails-otherwise")).StatusCode);
        await app.StopAsync();
    }

    private static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
