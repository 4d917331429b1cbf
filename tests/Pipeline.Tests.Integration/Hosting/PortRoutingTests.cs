using System.Net;
using System.Net.Http.Json;
using Pipeline.Cli.Hosting;
using Pipeline.Core.Crypto;

namespace Pipeline.Tests.Integration.Hosting;

/// <summary>Each HTTP surface answers only on its own port, whatever Host header the client writes.</summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class PortRoutingTests(StackFixture fixture)
{
    [Fact]
    public async Task ForgedHostHeader_OnEachPort_DoesNotReachTheOtherPortsEndpoints_Issue10()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Api | Roles.Ingest, schema: "it_port_routing");
        var apiAuthority = host.Api.BaseAddress!.Authority;
        var ingestAuthority = host.Ingest.BaseAddress!.Authority;
        var device = new TestDevice("port-routing");

        // Readings sent to the API port, claiming to be for the ingest port.
        var reading = new HttpRequestMessage(HttpMethod.Post, "/v1/readings") { Content = new ByteArrayContent(device.Next().Envelope) { Headers = { ContentType = new("application/json") } } };
        reading.Headers.Host = ingestAuthority;
        Assert.Equal(HttpStatusCode.NotFound, (await host.Api.SendAsync(reading)).StatusCode);

        // A registration sent to the ingest port, claiming to be for the API port.
        var body = Registration.Request(EthKey.Generate(), device.Key);
        var registration = new HttpRequestMessage(HttpMethod.Post, "/v1/devices") { Content = JsonContent.Create(body) };
        registration.Headers.Host = apiAuthority;
        Assert.Equal(HttpStatusCode.NotFound, (await host.Ingest.SendAsync(registration)).StatusCode);

        Assert.Empty(host.ReadAll(host.RawTopic));
        Assert.Equal(HttpStatusCode.NotFound, (await host.Api.GetAsync($"/v1/devices/{device.Address}")).StatusCode);

        // Each on its own port, whatever the Host header says, is answered.
        var onIngest = new HttpRequestMessage(HttpMethod.Post, "/v1/readings") { Content = new ByteArrayContent(device.Next().Envelope) { Headers = { ContentType = new("application/json") } } };
        onIngest.Headers.Host = apiAuthority;
        Assert.Equal(HttpStatusCode.Accepted, (await host.Ingest.SendAsync(onIngest)).StatusCode);
        var onApi = new HttpRequestMessage(HttpMethod.Post, "/v1/devices") { Content = JsonContent.Create(body) };
        onApi.Headers.Host = ingestAuthority;
        Assert.Equal(HttpStatusCode.Created, (await host.Api.SendAsync(onApi)).StatusCode);
    }
}
