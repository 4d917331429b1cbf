using Pipeline.Tests.Support;

namespace Pipeline.Tests.Unit.Cli;

/// <summary>The README's runnable examples are found and read as the integration test runs them (issue 11).</summary>
public sealed class ReadmeExampleTests
{
    [Fact]
    public void Readme_HasTheQuickStartAndSimulatorExamples_WithTheOutcomesTheyPromise()
    {
        var examples = ReadmeExample.All(File.ReadAllText(Path.Combine(RepositoryTools.Root, "README.md")));

        Assert.Contains(examples, e => e.Script.Contains("http://127.0.0.1:5080/health", StringComparison.Ordinal));
        Assert.Contains(examples, e => e.Script.Contains("cast wallet new", StringComparison.Ordinal));
        Assert.Contains(examples, e => e.Script.Contains("/v1/devices", StringComparison.Ordinal) && e.ExpectedOutput.Any(o => o.Contains("\"kind\":\"vehicle\"", StringComparison.Ordinal)));
        Assert.Contains(examples, e => e.Script.Contains("mosquitto_pub", StringComparison.Ordinal));
        Assert.Contains(examples, e => e.Eventually && e.Script.Contains("./depin lake query", StringComparison.Ordinal) && e.ExpectedOutput.Count > 1);
        Assert.Contains(examples, e => e.Script.Contains("./depin simulate", StringComparison.Ordinal) && e.Script.Contains("--misbehave", StringComparison.Ordinal));
    }

    [Fact]
    public void MarkedBlock_GivesItsScriptAndExpectedLines_AndAnEllipsisMatchesAnything()
    {
        var readme = "text\n<!-- readme-test: eventually -->\n```bash\necho '{\"id\":\"0xab\",\"kind\":\"vehicle\"}'\n# → {\"id\":\"0x…\",\"kind\":\"vehicle\"}\n```\n```bash\nnot marked\n```\n";

        var example = Assert.Single(ReadmeExample.All(readme));

        Assert.True(example.Eventually);
        Assert.Equal(4, example.Line);
        Assert.StartsWith("echo", example.Script);
        Assert.Empty(example.Missing("{\"id\":\"0xab\",\"kind\":\"vehicle\"}\n"));
        Assert.Single(example.Missing("{\"id\":\"0xab\",\"kind\":0}\n"));
        Assert.Single(example.Missing("prefix {\"id\":\"0xab\",\"kind\":\"vehicle\"}\n"));
    }

    [Fact]
    public void Marker_WithoutABashBlock_IsAnError()
    {
        Assert.Throws<FormatException>(() => ReadmeExample.All("<!-- readme-test -->\n```json\n{}\n```\n"));
    }
}
