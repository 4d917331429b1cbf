using System.Text.Json;
using Pipeline.Tests.Integration.Cli;

namespace Pipeline.Tests.Integration.Chaos;

/// <summary>
/// Issue 16: `depin chaos --duration 2m` through the real CLI — every stage its own process, killed and restarted at
/// random, PostgreSQL restarted and brokers taken down under a misbehaving fleet — ends with every check held: the
/// store, the dead letters (the processors' and the MQTT edge's), the lake, and the reward epochs closed meanwhile.
/// </summary>
[Trait("Category", "Integration")]
public sealed class ChaosCommandTests
{
    private sealed record Check(string Name, bool Held, string Detail);

    private sealed record Report(int TotalKills, int PostgresRestarts, int BrokerOutages, long ReadingsChecked, long Lost, long Duplicated, long LakeRows, long RebuiltRows, int EpochsClosed, List<Check> Checks, bool Passed);

    [Fact]
    public async Task TwoMinutesOfChaos_KillsRestartsAndOutages_LoseAndDuplicateNothing()
    {
        await using var folder = new DepinUp();
        var reportFile = Path.Combine(folder.Folder, "chaos.json");
        var run = folder.Start("chaos", "--duration", "2m", "--seed", "3", "--report", reportFile);
        await run.WaitForExitAsync(TimeSpan.FromMinutes(12));
        Assert.True(File.Exists(reportFile), $"depin chaos ended with {run.ExitCode} and wrote no report:\n{run.Output}");
        var report = JsonSerializer.Deserialize<Report>(await File.ReadAllTextAsync(reportFile), JsonSerializerOptions.Web)!;

        Assert.All(report.Checks, c => Assert.True(c.Held, $"{c.Name}: {c.Detail}"));
        Assert.Equal(8, report.Checks.Count);
        Assert.Equal(0, run.ExitCode);
        Assert.True(report.TotalKills >= 5, $"only {report.TotalKills} kills");
        Assert.True(report.PostgresRestarts >= 1, "PostgreSQL never restarted");
        Assert.True(report.BrokerOutages >= 1, "no broker outage");
        Assert.True(report.ReadingsChecked > 500, $"only {report.ReadingsChecked} readings checked");
        Assert.Equal((0L, 0L), (report.Lost, report.Duplicated));
        Assert.Equal(report.LakeRows, report.RebuiltRows);
        Assert.True(report.EpochsClosed >= 1, "the rewards stage closed no epoch");
    }
}
