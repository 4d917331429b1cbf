using System.Globalization;
using Microsoft.Playwright;
using Pipeline.Cli.Hosting;
using Pipeline.Simulator;

namespace Pipeline.Tests.Integration.Web;

/// <summary>The operator page over the whole pipeline in one host: its numbers move when a simulated fleet sends.</summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class OperatorStatusTests(StackFixture fixture)
{
    [Fact]
    public async Task OperatorStatus_WhenTheFleetSends_ShowsTheProcessorsAndTheLakeMove()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.All, schema: "it_web_operator");
        await using var browser = await Browser.LaunchAsync();
        var page = await browser.NewPageAsync(host.Api.BaseAddress!.ToString());
        await page.GotoAsync("/operator");
        var before = Count(await page.Locator("#streams-processed").TextContentAsync());
        var lagBefore = await page.Locator("[data-metric=lakeLagSeconds]").TextContentAsync();

        await new Simulation(host.Fleet(new SimulatorOptions { Vehicles = 3, Stations = 2, Duration = TimeSpan.FromSeconds(3), Rate = 20, Seed = 15 }), TimeProvider.System)
            .RunAsync(CancellationToken.None);

        // The page polls /metrics every second: without a reload, the processed total and the lake's rows rise, and the
        // lake's lag moves from what it showed before the fleet sent to the measured lag of the fleet's readings.
        await page.WaitForFunctionAsync(
            """
            ([before, lagBefore]) => {
                const lag = document.querySelector('[data-metric=lakeLagSeconds]').textContent;
                return Number(document.querySelector('#streams-processed').textContent.replace(/,/g, '')) > before
                    && Number(document.querySelector('#lake-rows').textContent.replace(/,/g, '')) > 0
                    && lag !== lagBefore && parseFloat(lag) > 0;
            }
            """,
            new object[] { before, lagBefore ?? "" }, new() { Timeout = 60_000 });
        await Assertions.Expect(page.Locator("#throughput-chart .uplot")).ToHaveCountAsync(1);
        // Issue 16: nothing was deleted by the broker before the processors read it, and the page says so.
        await Assertions.Expect(page.Locator("#streams-lost")).ToHaveTextAsync("0");
        await Browser.AssertAccessibleAsync(page);
        await Browser.ScreenshotAsync(page, "operator");
    }

    private static double Count(string? text) => double.TryParse(text?.Replace(",", "", StringComparison.Ordinal), NumberStyles.Float, CultureInfo.InvariantCulture, out var n) ? n : 0;
}
