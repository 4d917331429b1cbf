using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Pipeline.Projections;
using Pipeline.Projections.Lake;

namespace Pipeline.Tests.Unit.Projections;

/// <summary>
/// The lake's settings are checked where the projector is registered: settings under which compaction would delete a
/// file it merged into itself, or merge across a large file, stop the host instead of losing or overlapping rows.
/// </summary>
public sealed class LakeOptionsTests
{
    private static LakeOptions Resolve(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        using var provider = new ServiceCollection().AddProjections(configuration).BuildServiceProvider();
        return provider.GetRequiredService<IOptions<LakeOptions>>().Value;
    }

    [Fact]
    public void Registration_WithDefaultsOrTheConsistencyTestsSettings_Resolves()
    {
        Assert.Empty(new LakeOptions().Errors());
        var options = Resolve(new() { ["Lake:CompactAtFiles"] = "3", ["Lake:MaxEventsPerRound"] = "300" });
        Assert.Equal((3, 300), (options.CompactAtFiles, options.MaxEventsPerRound));
    }

    [Fact]
    public void Registration_WithSettingsThatWouldLoseOrOverlapRows_NamesEveryProblem()
    {
        var failure = Assert.Throws<OptionsValidationException>(() => Resolve(new()
        {
            ["Lake:CompactAtFiles"] = "1",
            ["Lake:CompactMaxFiles"] = "1",
            ["Lake:MaxEventsPerRound"] = "200000",
            ["Lake:CompactBelowRows"] = "200000",
            ["Lake:PollInterval"] = "00:00:00",
            ["Lake:EpochLength"] = "00:00:30",
            ["Lake:LocationDecimals"] = "7",
        }));
        Assert.Equal(
            ["Lake:LocationDecimals must be 0–6.", "Lake:PollInterval must be positive.", "Lake:EpochLength must be at least a minute.",
             "Lake:MaxEventsPerRound must be below Lake:CompactBelowRows.", "Lake:CompactAtFiles must be at least 2.",
             "Lake:CompactMaxFiles must be at least 2."],
            failure.Failures);
    }

    [Theory]
    [InlineData(null, "/data/lake")]
    [InlineData("", "/data/lake")]
    [InlineData("/srv/lake/", "/srv/lake")]
    [InlineData("/srv/lake", "/srv/lake")]
    public void ResolveDirectory_DefaultsToTheDataFolder_AndDropsATrailingSeparator(string? configured, string expected) =>
        Assert.Equal(expected, new LakeOptions { Directory = configured }.ResolveDirectory("/data"));
}
