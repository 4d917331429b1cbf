using System.Text.Json;
using Deque.AxeCore.Playwright;
using Microsoft.Playwright;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Web;

/// <summary>
/// Debian's chromium driven by Playwright (no browser download): headless, without the sandbox a root user cannot
/// have. Screenshots go to .data/test-results/screenshots (git-ignored); docs/screenshots holds the committed copies.
/// </summary>
public sealed class Browser : IAsyncDisposable
{
    public const string ChromiumPath = "/usr/bin/chromium";
    private readonly IPlaywright _playwright;
    private readonly IBrowser _browser;

    private Browser(IPlaywright playwright, IBrowser browser) => (_playwright, _browser) = (playwright, browser);

    public static string ScreenshotFolder { get; } = Path.Combine(RepositoryTools.Root, ".data", "test-results", "screenshots");

    public static async Task<Browser> LaunchAsync()
    {
        if (!File.Exists(ChromiumPath)) throw new InvalidOperationException($"{ChromiumPath} is missing: ./depin installs Debian's chromium package.");
        var playwright = await Playwright.CreateAsync();
        var browser = await playwright.Chromium.LaunchAsync(new() { ExecutablePath = ChromiumPath, Headless = true, Args = ["--no-sandbox"] });
        return new Browser(playwright, browser);
    }

    /// <summary>A fresh context (its own cookies) and page on <paramref name="baseUrl"/>, a desktop's window unless told (a phone: 390 × 844).</summary>
    public async Task<IPage> NewPageAsync(string baseUrl, int width = 1280, int height = 900)
    {
        var context = await _browser.NewContextAsync(new() { BaseURL = baseUrl, ViewportSize = new() { Width = width, Height = height }, AcceptDownloads = true });
        var page = await context.NewPageAsync();
        page.SetDefaultTimeout(30_000);
        return page;
    }

    /// <summary>
    /// What keeps the page from being used at its width: the page itself scrolling sideways, a table wider than the
    /// window outside a box that scrolls it, a link of the main navigation out of the window. Empty when none.
    /// </summary>
    public static async Task<string[]> LayoutProblemsAsync(IPage page) => await page.EvaluateAsync<string[]>("""
        () => {
          const width = window.innerWidth, problems = [];
          const page = document.documentElement.scrollWidth;
          if (page > width) problems.push(`the page scrolls sideways: ${page} px wide in ${width}`);
          for (const table of document.querySelectorAll('main table')) {
            let box = table.parentElement;
            while (box && box !== document.body && !['auto', 'scroll'].includes(getComputedStyle(box).overflowX)) box = box.parentElement;
            const edge = (box && box !== document.body ? box : table).getBoundingClientRect().right;
            if (edge > width + 1) problems.push(`a table reaches ${Math.round(edge)} px: ${table.outerHTML.slice(0, 100)}`);
          }
          for (const link of document.querySelectorAll('nav a')) {
            const r = link.getBoundingClientRect();
            if (r.width === 0 || r.left < 0 || r.right > width + 1) problems.push(`the navigation's "${link.textContent.trim()}" is out of reach`);
          }
          return problems;
        }
        """);

    public static async Task ScreenshotAsync(IPage page, string name)
    {
        Directory.CreateDirectory(ScreenshotFolder);
        await page.ScreenshotAsync(new() { Path = Path.Combine(ScreenshotFolder, name + ".png"), FullPage = true });
    }

    /// <summary>axe-core's rules (WCAG 2.x A and AA: labels, contrast, landmarks, names…) on the page as it stands; every violation is listed.</summary>
    public static async Task AssertAccessibleAsync(IPage page)
    {
        var result = await page.RunAxe();
        Assert.True(result.Violations.Length == 0, $"axe found on {page.Url}:\n" + string.Join("\n", result.Violations.Select(v =>
            $"{v.Id} ({v.Impact}): {v.Help} — {string.Join(" | ", v.Nodes.Select(n => n.Html))}")));
    }

    /// <summary>What a chart on the page draws: the JSON its LineChart hands to the script (x, and each series' label and values).</summary>
    public static async Task<JsonElement> ChartAsync(IPage page, string figureId)
    {
        var spec = await page.Locator($"#{figureId} [data-chart]").GetAttributeAsync("data-chart");
        return JsonDocument.Parse(spec!).RootElement.Clone();
    }

    public async ValueTask DisposeAsync()
    {
        await _browser.DisposeAsync();
        _playwright.Dispose();
    }
}
