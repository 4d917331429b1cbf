using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Pipeline.Cli.Hosting;
using Pipeline.Core.Crypto;
using Pipeline.Core.Registry;

namespace Pipeline.Tests.Integration.Registry;

/// <summary>Sign-ups cost every processor memory: the registry bounds request bodies before binding and rate-limits writes per client.</summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class RegistryLimitsTests(StackFixture fixture)
{
    [Fact]
    public async Task RegistrationBody_OverTheLimit_Gets413TooLarge_BeforeItIsBound_Issue10()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Api, schema: "it_registry_body");
        // A valid registration padded with a field the binder would skip: only a limit on the body refuses it.
        var padded = await host.Api.PostAsync("/v1/devices", Padded(NewRegistration(), 1024 * 1024));
        await AssertProblemAsync(padded, HttpStatusCode.RequestEntityTooLarge, "too_large");

        // The same without a declared length: refused once the stream passes the limit.
        var chunked = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(await Padded(NewRegistration(), 1024 * 1024).ReadAsStringAsync())));
        chunked.Headers.ContentType = new("application/json");
        var request = new HttpRequestMessage(HttpMethod.Post, "/v1/devices") { Content = chunked };
        request.Headers.TransferEncodingChunked = true;
        await AssertProblemAsync(await host.Api.SendAsync(request), HttpStatusCode.RequestEntityTooLarge, "too_large");

        // Under the limit, however it is padded, a registration goes through: the limit fits the largest typed data and more.
        Assert.Equal(HttpStatusCode.Created, (await host.Api.PostAsync("/v1/devices", Padded(NewRegistration(), 12 * 1024))).StatusCode);
    }

    [Fact]
    public async Task RegistryWrites_OverTheClientsRate_Get429RateLimitedWithRetryAfter_AndOtherClientsAreNotAffected_Issue10()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Api, new Dictionary<string, string?>
        {
            ["Registry:Limits:ClientWritesPerSecond"] = "1",
            ["Registry:Limits:ClientWriteBurst"] = "2",
        }, schema: "it_registry_rate");
        var (owner, device) = (EthKey.Generate(), EthKey.Generate());
        Assert.Equal(HttpStatusCode.Created, (await Registration.PostAsync(host, Registration.Request(owner, device))).StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await Registration.PostAsync(host, NewRegistration())).StatusCode);

        var third = await Registration.PostAsync(host, NewRegistration());
        await AssertProblemAsync(third, HttpStatusCode.TooManyRequests, "rate_limited");
        Assert.NotNull(third.Headers.RetryAfter);
        // Transfers spend the same budget.
        await AssertProblemAsync(await Registration.TransferAsync(host, device, owner, EthKey.Generate(), nonce: 0), HttpStatusCode.TooManyRequests, "rate_limited");
        // Reading is not writing.
        Assert.Equal(HttpStatusCode.OK, (await host.Api.GetAsync($"/v1/devices/{device.Address}")).StatusCode);

        using var other = ApiClientFrom(host, IPAddress.Parse("127.0.0.2"));
        Assert.Equal(HttpStatusCode.Created, (await other.PostAsJsonAsync("/v1/devices", NewRegistration())).StatusCode);
    }

    private static HttpClient ApiClientFrom(TestHost host, IPAddress local)
    {
        var client = Ingest.HttpIngestTests.ClientFrom(host, local);
        client.BaseAddress = host.Api.BaseAddress;
        return client;
    }

    private static RegisterDeviceRequest NewRegistration() => Registration.Request(EthKey.Generate(), EthKey.Generate());

    private static StringContent Padded(RegisterDeviceRequest request, int totalBytes)
    {
        var json = JsonSerializer.Serialize(request, JsonSerializerOptions.Web);
        var padding = new string(' ', totalBytes - json.Length - 16);
        return new StringContent(json.TrimEnd('}') + ",\"padding\":\"" + padding + "\"}", Encoding.UTF8, "application/json");
    }

    private static async Task AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status, string reason)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"expected {status} {reason}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(reason, JsonDocument.Parse(body).RootElement.GetProperty("reason").GetString());
    }
}
