using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Pipeline.Cli.Hosting;

namespace Pipeline.Tests.Integration.Fuzz;

/// <summary>What the fuzz found, each kept as a test named for it.</summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class FuzzRegressionTests(StackFixture fixture)
{
    [Theory]
    [InlineData("/v1/devices")]
    [InlineData("/v1/devices/0xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/transfers")]
    public async Task RegistryWrite_TypedDataWithInvalidUtf8InAString_Gets400BadEncodingNotA500_FuzzFinding1(string path)
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Api, schema: "it_fuzz_regressions");
        // A lone 0xFF inside a string of the typed data: System.Text.Json binds the element without looking, and
        // GetRawText threw on it (a 500) until the endpoint checked the bytes itself.
        byte[] body = [.. "{\"typedData\":{\"primaryType\":\""u8, 0xFF, .. "\"},\"ownerSignature\":\"0x1\",\"deviceSignature\":\"0x1\",\"fromSignature\":\"0x1\",\"toSignature\":\"0x1\"}"u8];
        using var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");

        using var response = await host.Api.PostAsync(path, content);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        using var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        Assert.Equal("bad_encoding", problem.RootElement.GetProperty("reason").GetString());
    }
}
