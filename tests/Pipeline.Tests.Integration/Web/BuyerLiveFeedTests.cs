using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Playwright;
using Pipeline.Cli.Hosting;
using Pipeline.Infra.Hosting;
using Pipeline.Marketplace.Accounts;
using Pipeline.Simulator;

namespace Pipeline.Tests.Integration.Web;

/// <summary>
/// The buyer console's live feed over the whole pipeline in one host: a subscription bought on the page, its feed
/// watched, and the rows a simulated fleet sends arriving on the page as the lake projects them (issue 15).
/// </summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class BuyerLiveFeedTests(StackFixture fixture)
{
    [Fact]
    public async Task Buyer_WatchingASubscriptionsFeed_SeesTheFleetsRowsArriveOnThePage()
    {
        var operatorKeyFile = Path.Combine(Directory.CreateTempSubdirectory("web-feed-op-").FullName, "operator-key.sha256");
        var operatorKey = new OperatorKey(operatorKeyFile).CreateIfMissing()!;
        await using var host = await TestHost.StartAsync(fixture, Roles.All, new Dictionary<string, string?>
        {
            ["Marketplace:OperatorKeyFile"] = operatorKeyFile,
            ["Marketplace:FeedPollInterval"] = "00:00:00.200",
        }, schema: "it_web_feed");
        var key = await CreateBuyerAsync(host.Api, operatorKey);

        await using var browser = await Browser.LaunchAsync();
        var page = await browser.NewPageAsync(host.Api.BaseAddress!.ToString());
        await page.GotoAsync("/buyer");
        await page.GetByLabel("API key").FillAsync(key);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        // A subscription: "Until" left empty; from a day ago (the form's default) so every row the fleet sends now is in it.
        await page.GetByLabel("Dataset").SelectOptionAsync("vehicle_signals");
        await page.GetByRole(AriaRole.Button, new() { Name = "Buy", Exact = true }).ClickAsync();
        await Assertions.Expect(page.Locator("#bought")).ToContainTextAsync("Bought grant");

        await page.GetByRole(AriaRole.Button, new() { Name = "Watch" }).ClickAsync();
        await Assertions.Expect(page.Locator("#feed-state")).ToHaveTextAsync("Watching: new rows appear at the top.");
        Assert.Equal(0, await page.Locator("#feed-rows li").CountAsync());

        using var stopFleet = new CancellationTokenSource();
        var fleet = new Simulation(host.Fleet(new SimulatorOptions { Vehicles = 3, Stations = 0, Duration = TimeSpan.FromMinutes(2), Rate = 10, Seed = 15 }), TimeProvider.System)
            .RunAsync(stopFleet.Token);
        try
        {
            // Without a reload, the fleet's readings appear as rows of the vehicle dataset.
            await Assertions.Expect(page.Locator("#feed-rows li")).Not.ToHaveCountAsync(0, new() { Timeout = 90_000 });
            await page.WaitForFunctionAsync("() => document.querySelectorAll('#feed-rows li').length >= 5", null, new() { Timeout = 90_000 });
        }
        finally
        {
            await stopFleet.CancelAsync();
            try { await fleet; } catch (OperationCanceledException) { }
        }
        await Assertions.Expect(page.Locator("#feed-rows li").First).ToContainTextAsync("speed_kmh");
        await Browser.ScreenshotAsync(page, "live-feed");

        // Every row shown is a distinct reading, and was charged to the grant before it was sent.
        var shown = await page.Locator("#feed-rows li").EvaluateAllAsync<string[]>("items => items.map(i => i.dataset.readingId)");
        Assert.Equal(shown.Length, shown.Distinct().Count());
        Assert.All(shown, id => Assert.Matches("^0x[0-9a-f]{64}$", id));
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/account");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        using var response = await host.Api.SendAsync(request);
        var account = await response.Content.ReadFromJsonAsync<JsonElement>(ServiceDefaults.WireJson);
        Assert.True(account.GetProperty("grants")[0].GetProperty("rowsUsed").GetInt64() >= shown.Length);
    }

    private static async Task<string> CreateBuyerAsync(HttpClient api, string operatorKey)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/buyers") { Content = JsonContent.Create(new { name = "Feed watcher", credits = 10_000_000 }) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", operatorKey);
        using var response = await api.SendAsync(request);
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("apiKey").GetString()!;
    }
}
