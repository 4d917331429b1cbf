using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Pipeline.Cli.Hosting;
using Pipeline.Core.Envelope;
using Pipeline.Infra.Hosting;
using Pipeline.Marketplace;
using Pipeline.Marketplace.Accounts;
using Pipeline.Registry;

namespace Pipeline.Tests.Integration.Marketplace;

/// <summary>
/// A real host serving the marketplace on its API port over a test's own lake (<see cref="MarketLake"/>, published to
/// the real manifest) with an operator key of its own, a credit per row and a generous rate limit; and the calls the
/// marketplace's HTTP tests all make: create a buyer, buy a grant, read the account, send a request, check a problem.
/// </summary>
public sealed class MarketTestHost(TestHost host, MarketLake lake, string operatorKeyFile, string operatorKey) : IAsyncDisposable
{
    public TestHost Host => host;
    public MarketLake Lake => lake;
    public string OperatorKeyFile => operatorKeyFile;
    public string OperatorKey => operatorKey;

    /// <summary>Starts the host in a fresh <paramref name="schema"/>; <paramref name="settings"/> add to or override the marketplace's test settings.</summary>
    public static async Task<MarketTestHost> StartAsync(StackFixture fixture, string schema, IDictionary<string, string?>? settings = null)
    {
        var lake = new MarketLake();
        var operatorKeyFile = Path.Combine(Path.GetTempPath(), "market-op-" + Guid.NewGuid().ToString("n"), "operator-key.sha256");
        var operatorKey = new OperatorKey(operatorKeyFile).CreateIfMissing()!;
        var values = new Dictionary<string, string?>
        {
            ["Lake:Directory"] = lake.Root,
            ["Marketplace:OperatorKeyFile"] = operatorKeyFile,
            ["Marketplace:CreditsPerThousandRows:vehicle_signals"] = "1000", // a credit per row: easy sums
            ["Marketplace:CreditsPerMegabyte:vehicle_signals"] = "10000", // and a credit per 100 bytes of a byte quota
            ["Marketplace:RequestsPerSecond"] = "1000",
            ["Marketplace:RequestBurst"] = "1000",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>()) values[key] = value;
        var host = await TestHost.StartAsync(fixture, Roles.Api, values, schema);
        await lake.PublishAsync(host);
        return new MarketTestHost(host, lake, operatorKeyFile, operatorKey);
    }

    /// <summary>Another API replica over the same database, lake and operator key (nothing dropped), as a second process or a restart would be.</summary>
    public Task<TestHost> StartReplicaAsync(StackFixture fixture) =>
        TestHost.StartAsync(fixture, Roles.Api, new Dictionary<string, string?>
        {
            ["EventStore:Schema"] = Host.Schema,
            ["Lake:Directory"] = Lake.Root,
            ["Marketplace:OperatorKeyFile"] = OperatorKeyFile,
        });

    public async ValueTask DisposeAsync()
    {
        await Host.DisposeAsync();
        Lake.Dispose();
        Directory.Delete(Path.GetDirectoryName(OperatorKeyFile)!, recursive: true);
    }

    /// <summary>A device's registry document, a stranger's, with <paramref name="make"/> in its metadata.</summary>
    public static Device Device(string id, string make, DeviceKind kind = DeviceKind.Vehicle)
    {
        var registered = DateTimeOffset.UtcNow;
        return new() { Id = id, Owner = "0x" + new string('0', 39) + "9", Kind = kind, Metadata = new() { ["make"] = make, ["model"] = "V40" }, RegisteredAt = registered, UpdatedAt = registered };
    }

    /// <summary>Stores devices' registry documents (new or changed) and notifies, as a registration's commit does.</summary>
    public async Task RegisterAsync(params Device[] devices)
    {
        await using (var session = host.Store.LightweightSession())
        {
            session.Store(devices);
            await session.SaveChangesAsync();
        }
        await host.ExecuteAsync($"SELECT pg_notify('{DeviceDirectory.Channel(host.Schema)}', '{devices[0].Id}')");
    }

    public async Task<(string BuyerId, string Key)> CreateBuyerAsync(long credits)
    {
        var response = await SendAsync(HttpMethod.Post, "/v1/buyers", OperatorKey, new { name = "test buyer", credits });
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        var created = await response.Content.ReadFromJsonAsync<CreatedBuyer>(ServiceDefaults.WireJson);
        Assert.StartsWith(ApiKeys.BuyerPrefix, created!.ApiKey, StringComparison.Ordinal);
        return (created.Buyer.Id, created.ApiKey);
    }

    public async Task<GrantView> BuyAsync(string key, object body)
    {
        var response = await SendAsync(HttpMethod.Post, "/v1/grants", key, body);
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
        return (await response.Content.ReadFromJsonAsync<GrantView>(ServiceDefaults.WireJson))!;
    }

    public async Task<AccountView> AccountAsync(string key)
    {
        var response = await SendAsync(HttpMethod.Get, "/v1/account", key);
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        return (await response.Content.ReadFromJsonAsync<AccountView>(ServiceDefaults.WireJson))!;
    }

    /// <summary>A request to <paramref name="api"/> (this host's by default); a key (dm…, dcs_…) goes as a bearer token, anything else as the raw header.</summary>
    public async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, string? key, object? body = null, HttpClient? api = null)
    {
        using var request = new HttpRequestMessage(method, path);
        if (key is not null) request.Headers.TryAddWithoutValidation("Authorization", key.StartsWith("dm", StringComparison.Ordinal) || key.StartsWith("dcs_", StringComparison.Ordinal) ? $"Bearer {key}" : key);
        if (body is not null) request.Content = JsonContent.Create(body, options: ServiceDefaults.WireJson);
        return await (api ?? Host.Api).SendAsync(request);
    }

    /// <summary>The export job once it is done or failed, as one status request that waits for it answers.</summary>
    public async Task<JsonElement> FinishedExportAsync(string key, string id) =>
        await (await SendAsync(HttpMethod.Get, $"/v1/exports/{id}?wait=60", key)).Content.ReadFromJsonAsync<JsonElement>();

    /// <summary>Asserts an RFC 9457 problem with this status and reason; returns its body.</summary>
    public static async Task<string> AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status, string reason)
    {
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == status, $"Expected {status}, got {response.StatusCode}: {body}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Equal(reason, JsonDocument.Parse(body).RootElement.GetProperty("reason").GetString());
        return body;
    }
}
