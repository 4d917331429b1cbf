namespace Pipeline.Tests.Integration.Cli;

/// <summary>The depin binary as a person meets it: its help, and one line for a mistake, never a stack trace (issue 11).</summary>
[Trait("Category", "Integration")]
public sealed class CommandLineTests
{
    [Fact]
    public async Task Help_ListsEveryCommand_TestAndBenchIncluded()
    {
        await using var folder = new DepinUp();

        var help = await folder.RunAsync("--help");

        Assert.Equal(0, help.ExitCode);
        foreach (var command in new[] { "up", "ingest", "streams", "projections", "lake", "simulate", "reset", "test", "bench" })
            Assert.Matches($@"(?m)^\s+{command}\b", help.Output);
    }

    [Theory]
    [InlineData("error: --api-port takes a whole number; 'abc' is not one. See depin up --help.", "up", "--api-port", "abc")]
    [InlineData("error: --transport takes one of both, http, mqtt; 'pigeon' is not one. See depin simulate --help.", "simulate", "--transport", "pigeon")]
    public async Task InvalidOptionValue_IsOneLineInWords_WithExitCode2(string expected, params string[] arguments)
    {
        await using var folder = new DepinUp();

        var run = await folder.RunAsync(arguments);

        Assert.Equal(2, run.ExitCode);
        Assert.Equal(expected, run.Errors.Trim());
        Assert.DoesNotContain("System.", run.Output);
    }

    [Fact]
    public async Task OperatorKeyNew_BeforeAnyUp_MakesTheKeyAndItsFolder()
    {
        await using var folder = new DepinUp();

        // The folder does not exist yet: `depin up` makes it at its first start, and a test of the README raced it.
        var run = await folder.RunAsync("operator-key", "--new");

        Assert.Equal(0, run.ExitCode);
        var key = run.Output.Trim().Split('\n')[^1].Trim();
        var hash = await File.ReadAllTextAsync(Path.Combine(folder.DataDirectory, "marketplace", "operator-key.sha256"));
        Assert.True(Pipeline.Marketplace.Accounts.ApiKeys.Matches(key, hash.Trim()), run.Output);
    }

    [Fact]
    public async Task Simulate_WithNoPipelineRunning_SaysWhatToDo_InOneLine()
    {
        await using var folder = new DepinUp();

        var run = await folder.RunAsync("simulate", "--duration", "5s");

        Assert.Equal(2, run.ExitCode);
        var line = Assert.Single(run.Errors.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith($"error: The registry API at http://127.0.0.1:{folder.ApiPort} does not answer", line);
        Assert.Contains("./depin up", line);
        Assert.DoesNotContain("   at ", run.Output);
    }
}
