using System.Net.Http.Headers;
using System.Text.Json;
using Microsoft.Playwright;
using Pipeline.Cli.Hosting;
using Pipeline.Marketplace.Accounts;
using Pipeline.Simulator;
using Spectre.Console;

namespace Pipeline.Bench;

/// <summary>
/// First render of each page of the web app in Debian's chromium (Playwright), with the whole pipeline and the
/// default fleet running in the same process as `depin up` has them; the baseline is the browser loading the API's
/// raw catalog JSON (GET /v1/datasets) from the same host in the same run. Times are the browser's own navigation
/// timing: the response's last byte (server render) and the load event (scripts and charts done).
/// </summary>
public static class WebBench
{
    private const int Warmup = 3;

    public static async Task RunAsync(TimeSpan duration, CancellationToken stop)
    {
        var runs = (int)Math.Clamp(duration.TotalSeconds * 10, 20, 200);
        await using var scratch = await Scratch.StartAsync(withChain: true); // the whole pipeline: rewards publish to a chain
        var operatorKeyFile = Path.Combine(scratch.Folder, "marketplace", "operator-key.sha256");
        var operatorKey = new OperatorKey(operatorKeyFile).CreateIfMissing()!;
        var (apiPort, ingestPort, mqttPort) = (Scratch.FreePort(), Scratch.FreePort(), Scratch.FreePort());
        var configuration = scratch.Configuration(
            new("Data:Directory", scratch.Folder),
            new("Endpoints:ApiPort", $"{apiPort}"),
            new("Endpoints:IngestPort", $"{ingestPort}"),
            new("Endpoints:MqttPort", $"{mqttPort}"),
            new("Marketplace:OperatorKeyFile", operatorKeyFile));
        await using var host = PipelineHost.Build(configuration, Roles.All);
        await host.StartAsync();
        var baseUrl = $"http://127.0.0.1:{apiPort}";
        using var api = new HttpClient { BaseAddress = new Uri(baseUrl) };

        using var stopFleet = new CancellationTokenSource();
        var fleet = new Simulation(new SimulatorOptions
        {
            Duration = TimeSpan.FromHours(1),
            ApiUrl = baseUrl,
            IngestUrl = $"http://127.0.0.1:{ingestPort}",
            MqttPort = mqttPort,
            StateDirectory = Path.Combine(scratch.Folder, "simulator"),
            ShowProgress = false,
        }, TimeProvider.System).RunAsync(stopFleet.Token);
        await AnsiConsole.Status().StartAsync("Waiting for the default fleet's rows in the lake…", _ => WaitForRowsAsync(api, stop));

        var buyerKey = await CreateBuyerAsync(api, operatorKey);
        await using var browser = await LaunchAsync();
        var page = await browser.NewPageAsync(new() { BaseURL = baseUrl, ViewportSize = new() { Width = 1280, Height = 900 } });
        await page.GotoAsync("/buyer");
        await page.GetByLabel("API key").FillAsync(buyerKey);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
        await page.Locator("#balance").WaitForAsync();

        var pages = new (string Name, string Path)[]
        {
            ("Baseline: the catalog's JSON (GET /v1/datasets)", "/v1/datasets"),
            ("Marketplace catalog", "/"),
            ("Dataset page (vehicle_signals)", "/datasets/vehicle_signals"),
            ("Buyer console, signed in", "/buyer"),
            ("Contributor dashboard, signed out", "/contributor"),
            ("Operator status", "/operator"),
        };
        var table = new Table().AddColumn("Page").AddColumn(new TableColumn("Response p50").RightAligned()).AddColumn(new TableColumn("Loaded p50").RightAligned())
            .AddColumn(new TableColumn("Loaded p99").RightAligned()).AddColumn(new TableColumn("Loaded ÷ baseline").RightAligned());
        double? baseline = null;
        await AnsiConsole.Progress().StartAsync(async progress =>
        {
            foreach (var (name, path) in pages)
            {
                var task = progress.AddTask(name, maxValue: runs + Warmup);
                var response = new List<double>();
                var loaded = new List<double>();
                for (var i = 0; i < runs + Warmup; i++)
                {
                    await page.GotoAsync(path, new() { WaitUntil = WaitUntilState.Load });
                    var timing = await page.EvaluateAsync<JsonElement>("() => { const n = performance.getEntriesByType('navigation')[0]; return { response: n.responseEnd - n.startTime, loaded: n.loadEventEnd - n.startTime }; }");
                    if (i >= Warmup)
                    {
                        response.Add(timing.GetProperty("response").GetDouble());
                        loaded.Add(timing.GetProperty("loaded").GetDouble());
                    }
                    task.Increment(1);
                }
                var p50 = Percentile(loaded, 0.5);
                baseline ??= p50;
                table.AddRow(name, Ms(Percentile(response, 0.5)), Ms(p50), Ms(Percentile(loaded, 0.99)), $"{p50 / baseline.Value:F1}×");
            }
        });
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLineInterpolated($"[grey]{runs} loads per page after {Warmup} warm-up loads; default fleet (20 vehicles, 10 stations) sending throughout.[/]");
        await stopFleet.CancelAsync();
        try { await fleet; } catch (OperationCanceledException) { }
    }

    private static async Task<IBrowser> LaunchAsync()
    {
        var playwright = await Playwright.CreateAsync();
        return await playwright.Chromium.LaunchAsync(new() { ExecutablePath = "/usr/bin/chromium", Headless = true, Args = ["--no-sandbox"] });
    }

    private static async Task WaitForRowsAsync(HttpClient api, CancellationToken stop)
    {
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while ((await api.GetFromJsonAsync<JsonElement>("/v1/datasets", stop)).EnumerateArray().All(d => d.GetProperty("rows").GetInt64() == 0))
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("The fleet's readings did not reach the lake within two minutes.");
            await Task.Delay(200, stop);
        }
    }

    private static async Task<string> CreateBuyerAsync(HttpClient api, string operatorKey)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/buyers") { Content = JsonContent.Create(new { name = "bench buyer", credits = 1_000_000 }) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", operatorKey);
        using var response = await api.SendAsync(request);
        response.EnsureSuccessStatusCode();
        return (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("apiKey").GetString()!;
    }

    private static double Percentile(List<double> values, double p)
    {
        var sorted = values.Order().ToList();
        return sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];
    }

    private static string Ms(double ms) => $"{ms:F1} ms";
}
