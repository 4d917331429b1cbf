using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Playwright;
using Pipeline.Cli.Hosting;
using Pipeline.Core.Crypto;
using Pipeline.Infra.Hosting;
using Pipeline.Marketplace;
using Pipeline.Marketplace.Accounts;
using Pipeline.Tests.Integration.Marketplace;

namespace Pipeline.Tests.Integration.Web;

/// <summary>
/// The web app in Debian's chromium against a real API host: the marketplace over a lake of the test's own Parquet
/// files, accounts in Marten, queries in the sandbox, contributor sign-in by an injected wallet. Each test makes its
/// own buyer or owner.
/// </summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class WebJourneyTests(StackFixture fixture) : IAsyncLifetime
{
    private readonly MarketLake _lake = new();
    private readonly string _operatorKeyFile = Path.Combine(Path.GetTempPath(), "web-op-" + Guid.NewGuid().ToString("n"), "operator-key.sha256");
    private TestHost _host = null!;
    private Browser _browser = null!;
    private string _operatorKey = "";

    private string BaseUrl => _host.Api.BaseAddress!.ToString();

    public async Task InitializeAsync()
    {
        _operatorKey = new OperatorKey(_operatorKeyFile).CreateIfMissing()!;
        _host = await TestHost.StartAsync(fixture, Roles.Api, new Dictionary<string, string?>
        {
            ["Lake:Directory"] = _lake.Root,
            ["Marketplace:OperatorKeyFile"] = _operatorKeyFile,
            ["Marketplace:CreditsPerThousandRows:vehicle_signals"] = "1000", // a credit per row
            ["Marketplace:RequestsPerSecond"] = "1000",
            ["Marketplace:RequestBurst"] = "1000",
        }, schema: "it_web_journeys");
        await _lake.PublishAsync(_host);
        _browser = await Browser.LaunchAsync();
    }

    public async Task DisposeAsync()
    {
        await _browser.DisposeAsync();
        await _host.DisposeAsync();
        _lake.Dispose();
        Directory.Delete(Path.GetDirectoryName(_operatorKeyFile)!, recursive: true);
    }

    [Fact]
    public async Task Buyer_BrowsesPreviewsBuysQueriesAndDownloads_InTheBrowser()
    {
        var key = await CreateBuyerAsync(100_000);
        var page = await _browser.NewPageAsync(BaseUrl);

        await page.GotoAsync("/?kind=vehicle");
        var card = page.Locator("[data-dataset=vehicle_signals]");
        await Assertions.Expect(card).ToContainTextAsync(_lake.Rows.Count.ToString("N0", System.Globalization.CultureInfo.InvariantCulture));
        await Assertions.Expect(page.Locator("[data-dataset=weather_observations]")).ToHaveCountAsync(0);
        await Browser.AssertAccessibleAsync(page);
        await Browser.ScreenshotAsync(page, "marketplace");

        await card.GetByRole(AriaRole.Link, new() { Name = "vehicle_signals" }).ClickAsync();
        await Assertions.Expect(page.GetByRole(AriaRole.Cell, new() { Name = "speed_kmh", Exact = true })).ToBeVisibleAsync();
        Assert.True(await page.Locator(".coverage rect.cell").CountAsync() >= 1);
        Assert.Equal(MarketplaceEndpoints.PreviewRows, await page.Locator("table.rows tbody tr").CountAsync());
        // Coverage over time: the rows of each hour of device time over the three days, the empty hours between them at 0.
        var coverage = await Browser.ChartAsync(page, "coverage-chart");
        Assert.Equal(HourBuckets(_lake.Rows).Select(h => (double)h.Key), coverage.GetProperty("x").EnumerateArray().Select(x => x.GetDouble()));
        Assert.Equal(HourBuckets(_lake.Rows).Select(h => (double)h.Rows.Count), coverage.GetProperty("series")[0].GetProperty("values").EnumerateArray().Select(v => v.GetDouble()));

        // One device's speed from the whole lake (not the preview): each hour's mean is the mean of that device's readings in it.
        await page.Locator("select[name=signal]").SelectOptionAsync("speed_kmh");
        await page.GetByLabel("Device (empty: every device)").FillAsync(MarketLake.Devices[0]);
        await page.GetByRole(AriaRole.Button, new() { Name = "Chart" }).ClickAsync();
        await Assertions.Expect(page.Locator("#signal-chart figcaption")).ToContainTextAsync(MarketLake.Devices[0]);
        await Assertions.Expect(page.Locator("#signal-chart .uplot")).ToHaveCountAsync(1);   // uPlot drew it
        var signal = await Browser.ChartAsync(page, "signal-chart");
        var hours = HourBuckets(_lake.Rows.Where(r => r.Device == MarketLake.Devices[0])).ToList();
        Assert.Equal(hours.Select(h => (double)h.Key), signal.GetProperty("x").EnumerateArray().Select(x => x.GetDouble()));
        var means = signal.GetProperty("series")[0].GetProperty("values").EnumerateArray().Select(v => v.ValueKind == JsonValueKind.Null ? (double?)null : v.GetDouble()).ToList();
        Assert.Equal(hours.Select(h => h.Rows.Any(r => r.SpeedKmh is not null) ? Math.Round(h.Rows.Where(r => r.SpeedKmh is not null).Average(r => r.SpeedKmh!.Value), 9) : (double?)null),
            means.Select(m => m is { } mean ? Math.Round(mean, 9) : (double?)null));
        await Browser.AssertAccessibleAsync(page);

        await page.GetByLabel("Rows to price").FillAsync("2500");
        await page.GetByRole(AriaRole.Button, new() { Name = "Price it" }).ClickAsync();
        await Assertions.Expect(page.Locator("#price-result")).ToContainTextAsync("2,500 credits");
        await Browser.ScreenshotAsync(page, "dataset");

        await page.GotoAsync("/buyer");
        await Browser.AssertAccessibleAsync(page);
        await page.GetByLabel("API key").FillAsync("dmk_" + new string('0', 43));
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Assertions.Expect(page.Locator(".refusal")).ToHaveAttributeAsync("data-reason", "unknown_key");

        await page.GetByLabel("API key").FillAsync(key);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await Assertions.Expect(page.Locator("#balance")).ToHaveTextAsync("100,000 credits");

        await page.GetByLabel("From (UTC)").FillAsync("2026-11-01T00:00");
        await page.GetByLabel("Row quota").FillAsync("5000");
        await page.GetByRole(AriaRole.Button, new() { Name = "Buy", Exact = true }).ClickAsync();
        await Assertions.Expect(page.Locator("#bought")).ToContainTextAsync("for 5,000 credits");
        await Assertions.Expect(page.Locator("#balance")).ToHaveTextAsync("95,000 credits");

        var sql = page.GetByLabel("SQL (one SELECT; the grant's dataset is the only table)");
        await sql.FillAsync("SELECT device_time, speed_kmh FROM vehicle_signals ORDER BY device_time LIMIT 50");
        await page.GetByRole(AriaRole.Button, new() { Name = "Run" }).ClickAsync();
        await Assertions.Expect(page.Locator("#query-status")).ToContainTextAsync("50 rows · 50 credits charged");
        Assert.Equal(50, await page.Locator("table.rows tbody tr").CountAsync());
        await Assertions.Expect(page.Locator("section[aria-labelledby=sql] .uplot")).ToHaveCountAsync(1);

        var download = await page.RunAndWaitForDownloadAsync(() => page.GetByRole(AriaRole.Button, new() { Name = "Download CSV" }).ClickAsync());
        var csv = await File.ReadAllLinesAsync((await download.PathAsync())!);
        Assert.Equal("device_time,speed_kmh", csv[0]);
        Assert.Equal(51, csv.Length);

        // A sandbox refusal is a message, and the page keeps working.
        await page.GetByLabel("SQL (one SELECT; the grant's dataset is the only table)").FillAsync("SELECT * FROM read_parquet('/etc/passwd')");
        await page.GetByRole(AriaRole.Button, new() { Name = "Run" }).ClickAsync();
        await Assertions.Expect(page.Locator(".refusal")).ToHaveAttributeAsync("data-reason", "table_function");
        await Browser.AssertAccessibleAsync(page);
        await Browser.ScreenshotAsync(page, "buyer");

        await page.GetByLabel("Shards").FillAsync("2");
        await page.GetByRole(AriaRole.Button, new() { Name = "Start export" }).ClickAsync();
        await Assertions.Expect(page.Locator("#export-status")).ToHaveTextAsync("done", new() { Timeout = 60_000 });
        var manifest = await page.RunAndWaitForDownloadAsync(() => page.GetByRole(AriaRole.Link, new() { Name = "manifest.json", Exact = true }).ClickAsync());
        using var signed = JsonDocument.Parse(await File.ReadAllTextAsync((await manifest.PathAsync())!));
        var files = signed.RootElement.GetProperty("files").EnumerateArray().ToList();
        Assert.Equal(_lake.Rows.Count, files.Sum(f => f.GetProperty("rows").GetInt64()));
        Assert.Equal(1 + files.Count, await page.Locator("#export-files li").CountAsync());   // the manifest and its signature, then every file
        Assert.Contains(files, f => f.GetProperty("path").GetString()!.StartsWith("data/shard=1/", StringComparison.Ordinal));
        await Browser.AssertAccessibleAsync(page);
        await Browser.ScreenshotAsync(page, "export");

        var account = await AccountAsync(key);
        Assert.Equal(95_000, account.GetProperty("balance").GetInt64());
        Assert.Equal(100 + _lake.Rows.Count, account.GetProperty("grants")[0].GetProperty("rowsUsed").GetInt64());

        // Spend history: the export, the download and the query, newest first, after the grant; per day, what the grant
        // took from the balance and what the charges used of it (a credit per row).
        await page.GotoAsync("/buyer");
        Assert.Equal(["export", "query", "query", "grant_bought", "credits_added"],
            await page.Locator("#spend-table tbody tr").EvaluateAllAsync<string[]>("rows => rows.map(r => r.dataset.kind)"));
        var spend = await Browser.ChartAsync(page, "spend-chart");
        Assert.Equal(5_000, spend.GetProperty("series")[0].GetProperty("values").EnumerateArray().Sum(v => v.GetDouble()));
        Assert.Equal(100 + _lake.Rows.Count, spend.GetProperty("series")[1].GetProperty("values").EnumerateArray().Sum(v => v.GetDouble()));
        await Browser.ScreenshotAsync(page, "spend");
    }

    // Every UTC hour (Unix seconds) from the rows' first to their last, with its rows (none in a gap), in order.
    private static List<(long Key, List<VehicleRow> Rows)> HourBuckets(IEnumerable<VehicleRow> rows)
    {
        var byHour = rows.GroupBy(r => r.DeviceTime.ToUnixTimeSeconds() / 3600 * 3600).ToDictionary(h => h.Key, h => h.ToList());
        var (first, last) = (byHour.Keys.Min(), byHour.Keys.Max());
        return Enumerable.Range(0, (int)((last - first) / 3600) + 1).Select(i => first + i * 3600L).Select(h => (h, byHour.GetValueOrDefault(h) ?? [])).ToList();
    }

    [Fact]
    public async Task Buyer_WithoutCreditOrWithAnExpiredGrant_IsToldWhyInsteadOfAnError()
    {
        var key = await CreateBuyerAsync(10);
        var page = await _browser.NewPageAsync(BaseUrl);
        await page.GotoAsync("/buyer");
        await page.GetByLabel("API key").FillAsync(key);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();

        await page.GetByLabel("From (UTC)").FillAsync("2026-11-01T00:00");
        await page.GetByLabel("Row quota").FillAsync("5000");
        await page.GetByRole(AriaRole.Button, new() { Name = "Buy", Exact = true }).ClickAsync();
        await Assertions.Expect(page.Locator(".refusal")).ToHaveAttributeAsync("data-reason", "insufficient_credit");
        await Assertions.Expect(page.Locator(".refusal")).ToContainTextAsync("Not enough credit");

        // A grant that expires in two seconds, bought through the API; once the clock passes it, the editor says so.
        var expiresAt = DateTimeOffset.UtcNow.AddSeconds(2);
        using (var buy = new HttpRequestMessage(HttpMethod.Post, "/v1/grants")
        {
            Content = JsonContent.Create(new { dataset = "vehicle_signals", from = "2026-11-01T00:00:00Z", rowQuota = 5, expiresAt }),
        })
        {
            buy.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
            (await _host.Api.SendAsync(buy)).EnsureSuccessStatusCode();
        }
        while (DateTimeOffset.UtcNow <= expiresAt) await Task.Delay(expiresAt - DateTimeOffset.UtcNow + TimeSpan.FromMilliseconds(50));
        await page.GotoAsync("/buyer");
        await Assertions.Expect(page.Locator("#grant-table")).ToContainTextAsync("expired");
        await page.GetByRole(AriaRole.Button, new() { Name = "Run" }).ClickAsync();
        await Assertions.Expect(page.Locator(".refusal")).ToHaveAttributeAsync("data-reason", "grant_expired");
        await Assertions.Expect(page.Locator(".refusal")).ToContainTextAsync("This grant has expired.");
        await Browser.AssertAccessibleAsync(page);
        await Browser.ScreenshotAsync(page, "refusal");
    }

    [Fact]
    public async Task Contributor_SignsInWithAnInjectedWallet_SeesTheirDevices()
    {
        var owner = EthKey.Generate();
        var device = new TestDevice("web-contributor");
        await Registration.RegisterAsync(_host, device.Key, owner: owner, metadata: Registration.Car);
        var page = await _browser.NewPageAsync(BaseUrl);
        await InjectedWallet.InstallAsync(page, owner);

        await page.GotoAsync("/contributor");
        await Browser.AssertAccessibleAsync(page);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in with browser wallet" }).ClickAsync();
        await Assertions.Expect(page.Locator("#wallet-address")).ToHaveTextAsync(owner.Address.ToLowerHex());
        await Assertions.Expect(page.Locator($"[data-device='{device.Address}']")).ToContainTextAsync("Volvo");
        await Browser.AssertAccessibleAsync(page);
        await Browser.ScreenshotAsync(page, "contributor");

        // Another wallet's signature over this owner's challenge is refused, shown as a message.
        var stranger = await _browser.NewPageAsync(BaseUrl);
        await stranger.GotoAsync($"/contributor?address={owner.Address.ToLowerHex()}");
        var message = await stranger.Locator("#challenge").TextContentAsync();
        await stranger.GetByLabel("Signature").FillAsync(Hex.Encode0x(EthKey.Generate().SignPersonal(System.Text.Encoding.UTF8.GetBytes(message!))));
        await stranger.GetByRole(AriaRole.Button, new() { Name = "Sign in", Exact = true }).ClickAsync();
        await Assertions.Expect(stranger.Locator(".refusal")).ToHaveAttributeAsync("data-reason", "bad_signature");
    }

    [Fact]
    public async Task EveryPage_AtPhoneWidth_DoesNotScrollSideways_TablesScrollInside_NavigationInReach()
    {
        var key = await CreateBuyerAsync(100_000);
        var page = await _browser.NewPageAsync(BaseUrl, width: 390, height: 844);
        var seen = new Dictionary<string, string[]>();
        async Task CheckAsync(string name, ILocator loaded)
        {
            await Assertions.Expect(loaded).ToBeVisibleAsync();
            seen[name] = await Browser.LayoutProblemsAsync(page);
        }

        await page.GotoAsync("/");
        await CheckAsync("catalog", page.Locator("[data-dataset=vehicle_signals]"));
        await page.GotoAsync("/datasets/vehicle_signals");
        await CheckAsync("dataset", page.Locator("table.rows tbody tr").First);
        await page.GotoAsync("/contributor");
        await CheckAsync("contributor", page.GetByRole(AriaRole.Main));
        await page.GotoAsync("/operator");
        await CheckAsync("operator", page.GetByRole(AriaRole.Main));
        await page.GotoAsync("/buyer");
        await CheckAsync("buyer, signed out", page.GetByLabel("API key"));
        await page.GetByLabel("API key").FillAsync(key);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await page.GetByLabel("From (UTC)").FillAsync("2026-11-01T00:00");
        await page.GetByLabel("Row quota").FillAsync("5000");
        await page.GetByRole(AriaRole.Button, new() { Name = "Buy", Exact = true }).ClickAsync();
        await Assertions.Expect(page.Locator("#bought")).ToContainTextAsync("for 5,000 credits");
        // The widest table the app shows: a result with every column of the dataset.
        await page.GetByLabel("SQL (one SELECT; the grant's dataset is the only table)").FillAsync("SELECT * FROM vehicle_signals LIMIT 20");
        await page.GetByRole(AriaRole.Button, new() { Name = "Run" }).ClickAsync();
        await CheckAsync("buyer, a result of every column", page.Locator("table.rows tbody tr").First);
        // Grant ids are random, and in a proportional font some are far wider than others: the widest one possible
        // (every letter a W) must fit too. A run once drew the page 3 px too wide for an unlucky id.
        await page.EvaluateAsync("() => document.querySelectorAll('option').forEach(o => o.textContent = o.textContent.replace(/grant_[A-Za-z0-9_-]{16}/, 'grant_' + 'W'.repeat(16)))");
        seen["buyer, the widest grant id"] = await Browser.LayoutProblemsAsync(page);
        await Browser.ScreenshotAsync(page, "buyer-phone");

        Assert.True(seen.Values.All(p => p.Length == 0), string.Join("\n", seen.Where(s => s.Value.Length > 0).Select(s => $"{s.Key}: {string.Join("; ", s.Value)}")));
    }

    [Fact]
    public async Task Visitor_WithOnlyTheKeyboard_FindsADatasetAndPricesAGrant()
    {
        var page = await _browser.NewPageAsync(BaseUrl);
        await page.GotoAsync("/");
        await page.Keyboard.PressAsync("Tab");
        await Assertions.Expect(page.Locator(":focus")).ToHaveTextAsync("Skip to content");
        await page.Keyboard.PressAsync("Enter");   // past the navigation, to the page's own content
        await TabToAsync(page, "a[href='/datasets/vehicle_signals']");
        await page.Keyboard.PressAsync("Enter");
        await page.WaitForURLAsync("**/datasets/vehicle_signals");

        await TabToAsync(page, "input[name=rows]");
        await page.Keyboard.PressAsync("Control+A");
        await page.Keyboard.TypeAsync("2500");
        await page.Keyboard.PressAsync("Enter");
        await Assertions.Expect(page.Locator("#price-result")).ToContainTextAsync("2,500 credits");
        await TabToAsync(page, "a[href='/buyer?dataset=vehicle_signals']");
        await page.Keyboard.PressAsync("Enter");
        await Assertions.Expect(page.GetByLabel("API key")).ToBeVisibleAsync();
    }

    [Fact]
    public async Task DatasetPage_AskedForAMalformedDeviceOrPlace_SaysWhatIsWrongAndShowsTheRest()
    {
        var page = await _browser.NewPageAsync(BaseUrl);
        foreach (var query in new[] { "device=0x1%27%3BDROP%20TABLE%20x", "near=91,0" })
        {
            await page.GotoAsync($"/datasets/vehicle_signals?{query}");
            await Assertions.Expect(page.Locator("section[aria-labelledby=signal] .refusal")).ToHaveAttributeAsync("data-reason", "invalid_request");
            Assert.Equal(MarketplaceEndpoints.PreviewRows, await page.Locator("table.rows tbody tr").CountAsync());
        }
    }

    // Presses Tab until the focus is on what the selector names, as someone without a mouse would.
    private static async Task TabToAsync(IPage page, string selector, int presses = 60)
    {
        for (var i = 0; i < presses; i++)
        {
            await page.Keyboard.PressAsync("Tab");
            if (await page.EvaluateAsync<bool>("s => document.activeElement !== null && document.activeElement.matches(s)", selector)) return;
        }
        throw new Xunit.Sdk.XunitException($"{presses} presses of Tab on {page.Url} never reached {selector}.");
    }

    private async Task<string> CreateBuyerAsync(long credits)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/buyers") { Content = JsonContent.Create(new { name = "Web buyer", credits }) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _operatorKey);
        using var response = await _host.Api.SendAsync(request);
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("apiKey").GetString()!;
    }

    private async Task<JsonElement> AccountAsync(string key)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, "/v1/account");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        using var response = await _host.Api.SendAsync(request);
        return await response.Content.ReadFromJsonAsync<JsonElement>(ServiceDefaults.WireJson);
    }
}
