using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Pipeline.Cli.Hosting;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Core.Registry;
using Pipeline.Streams.Registry;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Registry;

[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class RegistryTests(StackFixture fixture) : IAsyncLifetime
{
    private TestHost _host = null!;

    public async Task InitializeAsync() => _host = await TestHost.StartAsync(fixture, Roles.Api, schema: "it_registry");

    public async Task DisposeAsync() => await _host.DisposeAsync();

    private static readonly Dictionary<string, string> Car = new() { ["make"] = "Volvo", ["model"] = "V40 D2", ["year"] = "2015", ["firmware"] = "2.1.0" };

    [Fact]
    public async Task Register_SignedByOwnerAndDevice_CreatesTheDeviceForItsOwner()
    {
        var (owner, device) = Keys();
        var response = await RegisterAsync(owner, device, DeviceKind.Vehicle, Car);
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal($"/v1/devices/{device.Address.ToLowerHex()}", response.Headers.Location?.ToString());

        var found = await _host.Api.GetFromJsonAsync<Device>($"/v1/devices/{device.Address}");
        Assert.Equal(owner.Address.ToLowerHex(), found!.Owner);
        Assert.Equal(DeviceKind.Vehicle, found.Kind);
        Assert.Equal("V40 D2", found.Metadata["model"]);
        var owned = await _host.Api.GetFromJsonAsync<List<Device>>($"/v1/owners/{owner.Address}/devices");
        Assert.Equal([device.Address.ToLowerHex()], owned!.Select(d => d.Id));
    }

    [Fact]
    public async Task Register_WithSignaturesFromCast_IsAccepted()
    {
        // Both signatures made by foundry's cast, not by our code.
        var (owner, device) = Keys();
        var message = new RegistrationMessage(device.Address, owner.Address, DeviceKind.Weather,
            new Dictionary<string, string> { ["latitude"] = "53.35", ["longitude"] = "-6.26", ["elevation"] = "71", ["model"] = "WS-2000" }, DateTimeOffset.UtcNow).ToJson();
        var ownerSignature = RepositoryTools.Run(RepositoryTools.Cast, ["wallet", "sign", "--private-key", owner.ToHex(), message]);
        var deviceSignature = RepositoryTools.Run(RepositoryTools.Cast, ["wallet", "sign", "--private-key", device.ToHex(), message]);

        var response = await _host.Api.PostAsJsonAsync("/v1/devices", new RegisterDeviceRequest(message, ownerSignature, deviceSignature));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal("53.35", (await response.Content.ReadFromJsonAsync<Device>())!.Metadata["latitude"]);
    }

    [Fact]
    public async Task Transfer_SignedByBothOwners_MovesTheDevice_AndItsNonceCannotBeReplayed()
    {
        var (owner, device) = Keys();
        await RegisterAsync(owner, device, DeviceKind.Vehicle, Car);
        var buyer = EthKey.Generate();

        var transfer = await TransferAsync(device, owner, buyer, nonce: 0);
        Assert.Equal(HttpStatusCode.OK, transfer.StatusCode);
        var moved = await transfer.Content.ReadFromJsonAsync<Device>();
        Assert.Equal((buyer.Address.ToLowerHex(), 1), (moved!.Owner, moved.Transfers));
        Assert.Empty((await _host.Api.GetFromJsonAsync<List<Device>>($"/v1/owners/{owner.Address}/devices"))!);
        Assert.Single((await _host.Api.GetFromJsonAsync<List<Device>>($"/v1/owners/{buyer.Address}/devices"))!);

        // Back to the first owner, then the first transfer's signatures again: its nonce is spent.
        Assert.Equal(HttpStatusCode.OK, (await TransferAsync(device, buyer, owner, nonce: 1)).StatusCode);
        await AssertProblemAsync(await TransferAsync(device, owner, buyer, nonce: 0), HttpStatusCode.Conflict, "stale_message");
    }

    [Fact]
    public async Task Registry_RefusesEveryBadRequest_WithAProblemAndItsReason()
    {
        var (owner, device) = Keys();
        var stranger = EthKey.Generate();
        var message = new RegistrationMessage(device.Address, owner.Address, DeviceKind.Vehicle, Car, DateTimeOffset.UtcNow).ToJson();
        var ownerSig = Sign(owner, message);
        var deviceSig = Sign(device, message);

        await AssertProblemAsync(await Post(message, Sign(stranger, message), deviceSig), HttpStatusCode.Forbidden, "signer_mismatch");
        await AssertProblemAsync(await Post(message, ownerSig, Sign(stranger, message)), HttpStatusCode.Forbidden, "signer_mismatch");
        await AssertProblemAsync(await Post(message, ownerSig, "0x" + new string('1', 130)), HttpStatusCode.BadRequest, "bad_signature");
        await AssertProblemAsync(await Post(message, ownerSig, "0x12"), HttpStatusCode.BadRequest, "bad_signature");
        // A tampered message recovers to some other key: the owner did not sign it.
        await AssertProblemAsync(await Post(message + " ", ownerSig, deviceSig), HttpStatusCode.Forbidden, "signer_mismatch");
        await AssertProblemAsync(await Post("not json", ownerSig, deviceSig), HttpStatusCode.BadRequest, "malformed");
        await AssertProblemAsync(await Post(message.Replace("\"issuedAt\"", "\"extra\":1,\"issuedAt\""), ownerSig, deviceSig), HttpStatusCode.BadRequest, "unknown_field");
        var noFirmware = new RegistrationMessage(device.Address, owner.Address, DeviceKind.Vehicle, Car.Where(p => p.Key != "firmware").ToDictionary(), DateTimeOffset.UtcNow).ToJson();
        await AssertProblemAsync(await Post(noFirmware, Sign(owner, noFirmware), Sign(device, noFirmware)), HttpStatusCode.BadRequest, "malformed");
        var old = new RegistrationMessage(device.Address, owner.Address, DeviceKind.Vehicle, Car, DateTimeOffset.UtcNow.AddDays(-3)).ToJson();
        await AssertProblemAsync(await Post(old, Sign(owner, old), Sign(device, old)), HttpStatusCode.Conflict, "stale_message");
        await AssertProblemAsync(await _host.Api.PostAsync("/v1/devices", new StringContent("{broken", Encoding.UTF8, "application/json")), HttpStatusCode.BadRequest, "malformed");

        Assert.Equal(HttpStatusCode.Created, (await Post(message, ownerSig, deviceSig)).StatusCode);
        await AssertProblemAsync(await Post(message, ownerSig, deviceSig), HttpStatusCode.Conflict, "already_registered");

        await AssertProblemAsync(await _host.Api.GetAsync($"/v1/devices/{stranger.Address}"), HttpStatusCode.NotFound, "unknown_device");
        await AssertProblemAsync(await _host.Api.GetAsync("/v1/devices/0x1234"), HttpStatusCode.BadRequest, "bad_address");
        await AssertProblemAsync(await TransferAsync(stranger, owner, EthKey.Generate(), 0), HttpStatusCode.NotFound, "unknown_device");
        await AssertProblemAsync(await TransferAsync(device, stranger, EthKey.Generate(), 0), HttpStatusCode.Forbidden, "wrong_owner");

        async Task<HttpResponseMessage> Post(string text, string ownerSignature, string deviceSignature) =>
            await _host.Api.PostAsJsonAsync("/v1/devices", new RegisterDeviceRequest(text, ownerSignature, deviceSignature));
    }

    [Fact]
    public async Task Register_WithAControlCharacterOrUnpairedSurrogate_IsA400ProblemNeverA500_Issue10()
    {
        var (owner, device) = Keys();
        // Properly signed, but PostgreSQL cannot store the value: refused before anything is written.
        var nul = Registration.Request(owner, device, DeviceKind.Vehicle, new Dictionary<string, string>(Car) { ["make"] = "Vol\0vo" });
        await AssertProblemAsync(await Registration.PostAsync(_host, nul), HttpStatusCode.BadRequest, "bad_encoding");

        // An escaped half surrogate pair inside the signed message, and one in the request body around it.
        var message = nul.Message.Replace("\\u0000", "\\ud800", StringComparison.Ordinal);
        Assert.Contains("\\ud800", message);
        await AssertProblemAsync(await Registration.PostAsync(_host, new RegisterDeviceRequest(message, Sign(owner, message), Sign(device, message))), HttpStatusCode.BadRequest, "bad_encoding");
        var body = JsonSerializer.Serialize(new RegisterDeviceRequest(message, Sign(owner, message), "0x12"), JsonSerializerOptions.Web).Replace("0x12", "0x\\udc00", StringComparison.Ordinal);
        await AssertProblemAsync(await _host.Api.PostAsync("/v1/devices", new StringContent(body, Encoding.UTF8, "application/json")), HttpStatusCode.BadRequest, "malformed");

        Assert.Equal(HttpStatusCode.NotFound, (await _host.Api.GetAsync($"/v1/devices/{device.Address}")).StatusCode);
    }

    [Fact]
    public async Task ConcurrentRegistrations_OfOneDevice_StoreExactlyOne()
    {
        var (owner, device) = Keys();
        var message = new RegistrationMessage(device.Address, owner.Address, DeviceKind.Vehicle, Car, DateTimeOffset.UtcNow).ToJson();
        var request = new RegisterDeviceRequest(message, Sign(owner, message), Sign(device, message));
        var responses = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => _host.Api.PostAsJsonAsync("/v1/devices", request)));

        Assert.Single(responses, r => r.StatusCode == HttpStatusCode.Created);
        Assert.All(responses.Where(r => r.StatusCode != HttpStatusCode.Created), r => Assert.Equal(HttpStatusCode.Conflict, r.StatusCode));
        await using var session = _host.Stack.Store.QuerySession();
        Assert.Single(await session.Events.FetchStreamAsync(device.Address.ToLowerHex()));
    }

    [Fact]
    public async Task DeviceDirectory_RemembersAMissBriefly_ThenKnowsTheRegistration_AndATransferAfterARefresh()
    {
        var clock = new ManualClock(DateTimeOffset.UtcNow);
        var directory = new DeviceDirectory(_host.Stack, clock, Microsoft.Extensions.Logging.Abstractions.NullLogger<DeviceDirectory>.Instance);
        await directory.RefreshAsync(CancellationToken.None);
        var (owner, device) = Keys();
        var address = device.Address.ToLowerHex();
        Assert.Empty(await directory.LookupAsync([address], CancellationToken.None));

        Assert.Equal(HttpStatusCode.Created, (await RegisterAsync(owner, device, DeviceKind.Vehicle, Car)).StatusCode);
        // The miss is remembered: an unregistered sender does not cost a query per reading.
        Assert.Empty(await directory.LookupAsync([address], CancellationToken.None));
        clock.Advance(TimeSpan.FromSeconds(3));
        Assert.Equal(owner.Address.ToLowerHex(), (await directory.LookupAsync([address], CancellationToken.None))[address].Owner);

        var buyer = EthKey.Generate();
        await TransferAsync(device, owner, buyer, 0);
        await directory.RefreshAsync(CancellationToken.None);
        Assert.Equal(buyer.Address.ToLowerHex(), (await directory.LookupAsync([address], CancellationToken.None))[address].Owner);
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

        Assert.Equal(["201", "400", "403", "409", "413", "415"], Statuses("/v1/devices", "post"));
        Assert.Equal(["200", "400", "403", "404", "409", "413", "415"], Statuses("/v1/devices/{address}/transfers", "post"));
        Assert.Equal(["200", "400", "404"], Statuses("/v1/devices/{address}", "get"));
        Assert.Equal(["200", "400"], Statuses("/v1/owners/{address}/devices", "get"));
    }

    /// <summary>A clock that moves only when told to.</summary>
    private sealed class ManualClock(DateTimeOffset start) : TimeProvider
    {
        private DateTimeOffset _now = start;

        public override DateTimeOffset GetUtcNow() => _now;

        public void Advance(TimeSpan by) => _now += by;
    }

    private static (EthKey Owner, EthKey Device) Keys() => (EthKey.Generate(), EthKey.Generate());

    private static string Sign(EthKey key, string message) => Hex.Encode0x(key.SignPersonal(Encoding.UTF8.GetBytes(message)));

    private Task<HttpResponseMessage> RegisterAsync(EthKey owner, EthKey device, DeviceKind kind, Dictionary<string, string> metadata)
    {
        var message = new RegistrationMessage(device.Address, owner.Address, kind, metadata, DateTimeOffset.UtcNow).ToJson();
        return _host.Api.PostAsJsonAsync("/v1/devices", new RegisterDeviceRequest(message, Sign(owner, message), Sign(device, message)));
    }

    private Task<HttpResponseMessage> TransferAsync(EthKey device, EthKey from, EthKey to, int nonce)
    {
        var message = new TransferMessage(device.Address, from.Address, to.Address, nonce, DateTimeOffset.UtcNow).ToJson();
        return _host.Api.PostAsJsonAsync($"/v1/devices/{device.Address}/transfers", new TransferDeviceRequest(message, Sign(from, message), Sign(to, message)));
    }

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
