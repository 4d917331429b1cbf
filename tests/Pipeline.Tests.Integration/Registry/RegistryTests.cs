using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Pipeline.Infra.Hosting;
using Pipeline.Cli.Hosting;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Core.Registry;
using Pipeline.Registry;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Registry;

[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class RegistryTests(StackFixture fixture) : IAsyncLifetime
{
    private TestHost _host = null!;

    public async Task InitializeAsync() => _host = await TestHost.StartAsync(fixture, Roles.Api, schema: "it_registry");

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private static readonly Dictionary<string, string> Car = Registration.Car;

    [Fact]
    public async Task Register_SignedByOwnerAndDevice_CreatesTheDeviceForItsOwner()
    {
        var (owner, device) = Keys();
        var response = await Registration.PostAsync(_host, Registration.Request(owner, device));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal($"/v1/devices/{device.Address.ToLowerHex()}", response.Headers.Location?.ToString());

        var found = await _host.Api.GetFromJsonAsync<Device>($"/v1/devices/{device.Address}", ServiceDefaults.WireJson);
        Assert.Equal(owner.Address.ToLowerHex(), found!.Owner);
        Assert.Equal(DeviceKind.Vehicle, found.Kind);
        Assert.Equal("V40 D2", found.Metadata["model"]);
        var owned = await _host.Api.GetFromJsonAsync<List<Device>>($"/v1/owners/{owner.Address}/devices", ServiceDefaults.WireJson);
        Assert.Equal([device.Address.ToLowerHex()], owned!.Select(d => d.Id));
    }

    [Fact]
    public async Task Register_TypedDataAsTheApiDescribesIt_SignedByCast_IsAccepted_Issue10()
    {
        // Built from GET /v1/network alone, written the way a person would (no EIP712Domain in types, millisecond time),
        // and signed by foundry's cast: nothing of ours between the description and the signatures.
        var (owner, device) = Keys();
        var network = await _host.Api.GetFromJsonAsync<JsonElement>("/v1/network");
        var typedData = JsonSerializer.Serialize(new
        {
            types = new { RegisterWeatherStation = network.GetProperty("types").GetProperty("RegisterWeatherStation") },
            primaryType = "RegisterWeatherStation",
            domain = network.GetProperty("domain"),
            message = new
            {
                device = device.Address.ToString(), owner = owner.Address.ToString(),
                latitude = "53.35", longitude = "-6.26", elevation = "71", model = "WS-2000",
                issuedAt = DateTimeOffset.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture),
            },
        });
        var ownerSignature = RepositoryTools.Run(RepositoryTools.Cast, ["wallet", "sign", "--data", "--private-key", owner.ToHex(), typedData]);
        var deviceSignature = RepositoryTools.Run(RepositoryTools.Cast, ["wallet", "sign", "--data", "--private-key", device.ToHex(), typedData]);

        var response = await Registration.PostAsync(_host, new RegisterDeviceRequest(JsonSerializer.Deserialize<JsonElement>(typedData), ownerSignature, deviceSignature));
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        Assert.Equal("53.35", (await response.Content.ReadFromJsonAsync<Device>(ServiceDefaults.WireJson))!.Metadata["latitude"]);
    }

    [Fact]
    public async Task Register_SignedForAnotherNetwork_IsRefusedWrongNetwork_AndTheNetworkComesFromConfiguration_Issue10()
    {
        var (owner, device) = Keys();
        var mainnet = Registration.Network with { ChainId = 1 };
        await AssertProblemAsync(await Registration.PostAsync(_host, Registration.Request(owner, device, network: mainnet)), HttpStatusCode.BadRequest, "wrong_network");
        await AssertProblemAsync(await Registration.PostAsync(_host, Registration.Request(owner, device, network: Registration.Network with { Name = "Another DePIN" })), HttpStatusCode.BadRequest, "wrong_network");

        // A host configured for chain 1 takes exactly what this one refused, and refuses what this one takes.
        await using var other = await TestHost.StartAsync(fixture, Roles.Api, new Dictionary<string, string?> { ["Network:ChainId"] = "1" }, schema: "it_registry_chain_1");
        Assert.Equal(1, (await other.Api.GetFromJsonAsync<JsonElement>("/v1/network")).GetProperty("domain").GetProperty("chainId").GetInt32());
        await AssertProblemAsync(await Registration.PostAsync(other, Registration.Request(owner, device)), HttpStatusCode.BadRequest, "wrong_network");
        Assert.Equal(HttpStatusCode.Created, (await Registration.PostAsync(other, Registration.Request(owner, device, network: mainnet))).StatusCode);
    }

    [Fact]
    public async Task Transfer_SignedByBothOwners_MovesTheDevice_AndItsNonceCannotBeReplayed()
    {
        var (owner, device) = Keys();
        await Registration.RegisterAsync(_host, device, owner: owner);
        var buyer = EthKey.Generate();

        var transfer = await Registration.TransferAsync(_host, device, owner, buyer, nonce: 0);
        Assert.Equal(HttpStatusCode.OK, transfer.StatusCode);
        var moved = await transfer.Content.ReadFromJsonAsync<Device>(ServiceDefaults.WireJson);
        Assert.Equal((buyer.Address.ToLowerHex(), 1), (moved!.Owner, moved.Transfers));
        Assert.Empty((await _host.Api.GetFromJsonAsync<List<Device>>($"/v1/owners/{owner.Address}/devices", ServiceDefaults.WireJson))!);
        Assert.Single((await _host.Api.GetFromJsonAsync<List<Device>>($"/v1/owners/{buyer.Address}/devices", ServiceDefaults.WireJson))!);

        // Back to the first owner, then the first transfer's signatures again: its nonce is spent.
        Assert.Equal(HttpStatusCode.OK, (await Registration.TransferAsync(_host, device, buyer, owner, nonce: 1)).StatusCode);
        await AssertProblemAsync(await Registration.TransferAsync(_host, device, owner, buyer, nonce: 0), HttpStatusCode.Conflict, "stale_message");
    }

    [Fact]
    public async Task Registry_RefusesEveryBadRequest_WithAProblemAndItsReason()
    {
        var (owner, device) = Keys();
        var stranger = EthKey.Generate();
        var message = Registration.Message(owner, device);
        var typedData = message.ToJson();
        var ownerSig = message.Sign(owner);
        var deviceSig = message.Sign(device);

        await AssertProblemAsync(await Post(typedData, message.Sign(stranger), deviceSig), HttpStatusCode.Forbidden, "signer_mismatch");
        await AssertProblemAsync(await Post(typedData, ownerSig, message.Sign(stranger)), HttpStatusCode.Forbidden, "signer_mismatch");
        await AssertProblemAsync(await Post(typedData, ownerSig, "0x" + new string('1', 130)), HttpStatusCode.BadRequest, "bad_signature");
        await AssertProblemAsync(await Post(typedData, ownerSig, "0x12"), HttpStatusCode.BadRequest, "bad_signature");
        // A tampered message recovers to some other key: the owner did not sign it.
        await AssertProblemAsync(await Post(typedData.Replace("V40 D2", "V40 D3", StringComparison.Ordinal), ownerSig, deviceSig), HttpStatusCode.Forbidden, "signer_mismatch");
        await AssertProblemAsync(await _host.Api.PostAsJsonAsync("/v1/devices", new { typedData = "not typed data", ownerSignature = ownerSig, deviceSignature = deviceSig }), HttpStatusCode.BadRequest, "malformed");
        await AssertProblemAsync(await _host.Api.PostAsJsonAsync("/v1/devices", new { message = typedData, ownerSignature = ownerSig, deviceSignature = deviceSig }), HttpStatusCode.BadRequest, "malformed");
        await AssertProblemAsync(await Post(typedData.Replace("\"issuedAt\":\"", "\"extra\":\"1\",\"issuedAt\":\"", StringComparison.Ordinal), ownerSig, deviceSig), HttpStatusCode.BadRequest, "unknown_field");
        await AssertProblemAsync(await Post(typedData.Replace("\"primaryType\"", "\"extra\":1,\"primaryType\"", StringComparison.Ordinal), ownerSig, deviceSig), HttpStatusCode.BadRequest, "unknown_field");
        await AssertProblemAsync(await Post(typedData.Replace(",\"firmware\":\"2.1.0\"", "", StringComparison.Ordinal), ownerSig, deviceSig), HttpStatusCode.BadRequest, "malformed");
        await AssertProblemAsync(await Post(typedData.Replace("\"RegisterVehicle\":[", "\"RegisterVehicle\":[{\"name\":\"vin\",\"type\":\"string\"},", StringComparison.Ordinal), ownerSig, deviceSig), HttpStatusCode.BadRequest, "malformed");
        await AssertProblemAsync(await Post(typedData.Replace("\"chainId\":31337", "\"chainId\":31337,\"salt\":\"0x01\"", StringComparison.Ordinal), ownerSig, deviceSig), HttpStatusCode.BadRequest, "wrong_network");
        var old = Registration.Message(owner, device, issuedAt: DateTimeOffset.UtcNow.AddDays(-3));
        await AssertProblemAsync(await Post(old.ToJson(), old.Sign(owner), old.Sign(device)), HttpStatusCode.Conflict, "stale_message");
        await AssertProblemAsync(await _host.Api.PostAsync("/v1/devices", new StringContent("{broken", Encoding.UTF8, "application/json")), HttpStatusCode.BadRequest, "malformed");

        Assert.Equal(HttpStatusCode.Created, (await Post(typedData, ownerSig, deviceSig)).StatusCode);
        await AssertProblemAsync(await Post(typedData, ownerSig, deviceSig), HttpStatusCode.Conflict, "already_registered");

        await AssertProblemAsync(await _host.Api.GetAsync($"/v1/devices/{stranger.Address}"), HttpStatusCode.NotFound, "unknown_device");
        await AssertProblemAsync(await _host.Api.GetAsync("/v1/devices/0x1234"), HttpStatusCode.BadRequest, "bad_address");
        await AssertProblemAsync(await Registration.TransferAsync(_host, stranger, owner, EthKey.Generate(), 0), HttpStatusCode.NotFound, "unknown_device");
        await AssertProblemAsync(await Registration.TransferAsync(_host, device, stranger, EthKey.Generate(), 0), HttpStatusCode.Forbidden, "wrong_owner");

        Task<HttpResponseMessage> Post(string typed, string ownerSignature, string deviceSignature) =>
            Registration.PostAsync(_host, new RegisterDeviceRequest(JsonSerializer.Deserialize<JsonElement>(typed), ownerSignature, deviceSignature));
    }

    [Fact]
    public async Task Register_WithAControlCharacterOrUnpairedSurrogate_IsA400ProblemNeverA500_Issue10()
    {
        var (owner, device) = Keys();
        // Properly signed, but PostgreSQL cannot store the value: refused before anything is written.
        var nul = Registration.Request(owner, device, metadata: new Dictionary<string, string>(Car) { ["make"] = "Vol\0vo" });
        await AssertProblemAsync(await Registration.PostAsync(_host, nul), HttpStatusCode.BadRequest, "bad_encoding");

        // An escaped half surrogate pair inside the typed data, and one in the request body around it.
        var body = JsonSerializer.Serialize(nul, JsonSerializerOptions.Web).Replace("\\u0000", "\\ud800", StringComparison.Ordinal);
        Assert.Contains("Vol\\ud800vo", body);
        await AssertProblemAsync(await _host.Api.PostAsync("/v1/devices", new StringContent(body, Encoding.UTF8, "application/json")), HttpStatusCode.BadRequest, "bad_encoding");
        body = body.Replace(nul.DeviceSignature, "0x\\udc00", StringComparison.Ordinal);
        await AssertProblemAsync(await _host.Api.PostAsync("/v1/devices", new StringContent(body, Encoding.UTF8, "application/json")), HttpStatusCode.BadRequest, "malformed");

        Assert.Equal(HttpStatusCode.NotFound, (await _host.Api.GetAsync($"/v1/devices/{device.Address}")).StatusCode);
    }

    [Fact]
    public async Task ConcurrentRegistrations_OfOneDevice_StoreExactlyOne()
    {
        var (owner, device) = Keys();
        var request = Registration.Request(owner, device);
        var responses = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Registration.PostAsync(_host, request)));

        Assert.Single(responses, r => r.StatusCode == HttpStatusCode.Created);
        Assert.All(responses.Where(r => r.StatusCode != HttpStatusCode.Created), r => Assert.Equal(HttpStatusCode.Conflict, r.StatusCode));
        await using var session = _host.Store.QuerySession();
        Assert.Single(await session.Events.FetchStreamAsync(device.Address.ToLowerHex()));
    }

    [Fact]
    public async Task ProblemType_OfARegistryRefusal_IsExplainedOnTheApiPort()
    {
        var response = await _host.Api.GetAsync("/v1/devices/0x1234");
        var type = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.GetProperty("type").GetString();
        Assert.Equal("/problems/bad_address", type);

        var explained = await _host.Api.GetFromJsonAsync<JsonElement>(type);
        Assert.Equal("bad_address", explained.GetProperty("reason").GetString());
        Assert.Equal(400, explained.GetProperty("status").GetInt32());
        Assert.False(string.IsNullOrWhiteSpace(explained.GetProperty("description").GetString()));
        Assert.Equal(HttpStatusCode.NotFound, (await _host.Api.GetAsync("/problems/no_such_reason")).StatusCode);
    }

    [Fact]
    public async Task OpenApi_DeclaresEveryRefusalOfTheRegistry()
    {
        var paths = (await _host.Api.GetFromJsonAsync<JsonElement>("/openapi/v1.json")).GetProperty("paths");
        string[] Statuses(string path, string method) =>
            [.. paths.GetProperty(path).GetProperty(method).GetProperty("responses").EnumerateObject().Select(r => r.Name).Order()];

        Assert.Equal(["201", "400", "403", "409", "413", "415", "429"], Statuses("/v1/devices", "post"));
        Assert.Equal(["200", "400", "403", "404", "409", "413", "415", "429"], Statuses("/v1/devices/{address}/transfers", "post"));
        Assert.Equal(["200", "400", "404"], Statuses("/v1/devices/{address}", "get"));
        Assert.Equal(["200", "400"], Statuses("/v1/owners/{address}/devices", "get"));
        Assert.Equal(["200"], Statuses("/v1/network", "get"));
    }

    private static (EthKey Owner, EthKey Device) Keys() => (EthKey.Generate(), EthKey.Generate());

    private static async Task AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status, string reason)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"expected {status} {reason}, got {(int)response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonDocument.Parse(body).RootElement;
        Assert.Equal(reason, problem.GetProperty("reason").GetString());
        Assert.Equal($"/problems/{reason}", problem.GetProperty("type").GetString());
    }
}
