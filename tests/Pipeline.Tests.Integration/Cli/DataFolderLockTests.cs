using Npgsql;
using Pipeline.Infra.Development;

namespace Pipeline.Tests.Integration.Cli;

/// <summary>A running `depin up` and the commands that would damage it (issue 11).</summary>
public sealed class RunningUp : IAsyncLifetime
{
    public DepinUp Folder { get; } = new();
    public DepinRun Up { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Up = Folder.Start("up", "--no-fleet");
        await Folder.WaitUntilHealthyAsync(Up);
    }

    public async Task DisposeAsync() => await Folder.DisposeAsync();
}

/// <summary>
/// One `depin up` owns its data folder: a second up, a reset and a lake replacement are refused at once, in one line
/// that names it, and leave it running as it was (issue 11).
/// </summary>
[Trait("Category", "Integration")]
public sealed class DataFolderLockTests(RunningUp running) : IClassFixture<RunningUp>
{
    private DepinUp Folder => running.Folder;

    [Fact]
    public async Task SecondUp_OnTheSameFolder_IsRefusedAtOnce_AndLeavesTheFirstsBrokerFile()
    {
        var bootstrap = Path.Combine(Folder.DataDirectory, "kafka.bootstrap");
        var published = await File.ReadAllTextAsync(bootstrap);

        // Other ports, so that nothing but the folder stands in its way.
        var second = await Folder.RunAsync("up", "--no-fleet", "--api-port", $"{TestHost.FreePort()}", "--ingest-port", $"{TestHost.FreePort()}", "--mqtt-port", $"{TestHost.FreePort()}");

        AssertRefusedInOneLine(second, "stop it first");
        Assert.Equal(published, await File.ReadAllTextAsync(bootstrap));
        await Folder.WaitUntilHealthyAsync(running.Up, TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task Reset_WhileUpRuns_IsRefused_AndDeletesNothing()
    {
        var reset = await Folder.RunAsync("reset");

        AssertRefusedInOneLine(reset, "nothing was deleted");
        Assert.True(File.Exists(Path.Combine(Folder.DataDirectory, "kafka.bootstrap")));
        Assert.True(await Folder.PostgresRunningAsync());
        await Folder.WaitUntilHealthyAsync(running.Up, TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task LakeRebuildReplace_WhileUpProjects_IsRefusedBeforeRebuilding()
    {
        var rebuild = await Folder.RunAsync("lake", "rebuild", "--replace");

        AssertRefusedInOneLine(rebuild, "leave out --replace");
        Assert.False(Directory.Exists(Path.Combine(Folder.DataDirectory, "lake-rebuild")));
    }

    [Fact]
    public async Task LakeRebuildReplace_WhileAProjectorLeadsTheLake_IsRefusedBeforeRebuilding()
    {
        // Another data folder on the same database: only the projector's own lock can stop it.
        var elsewhere = Path.Combine(Folder.Folder, "elsewhere");
        var postgres = new NpgsqlConnectionStringBuilder
        {
            Host = "127.0.0.1",
            Port = Folder.PostgresPort,
            Username = "postgres",
            Password = (await File.ReadAllTextAsync(Path.Combine(Folder.DataDirectory, "postgres.password"))).Trim(),
            Database = "depin",
        }.ConnectionString;

        var rebuild = await Folder.RunAsync("lake", "rebuild", "--replace", "--data", elsewhere, "--postgres", postgres);

        Assert.Equal(2, rebuild.ExitCode);
        Assert.Equal("error: A projector is running on this lake (depin up or depin projections); stop it before replacing the lake, or leave out --replace to rebuild and compare only.", rebuild.Errors.Trim());
        Assert.False(Directory.Exists(Path.Combine(elsewhere, "lake-rebuild")));
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task LocalCluster_AsksForThePasswordKeptBesideIt_WhichOnlyItsOwnerMayRead()
    {
        var passwordFile = Path.Combine(Folder.DataDirectory, "postgres.password");
        var withoutPassword = new NpgsqlConnectionStringBuilder { Host = "127.0.0.1", Port = Folder.PostgresPort, Username = "postgres", Database = "depin", Pooling = false };

        await using (var trusting = new NpgsqlConnection(withoutPassword.ConnectionString))
            await Assert.ThrowsAnyAsync<NpgsqlException>(() => trusting.OpenAsync());
        await using (var wrong = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(withoutPassword.ConnectionString) { Password = "postgres" }.ConnectionString))
            await Assert.ThrowsAnyAsync<NpgsqlException>(() => wrong.OpenAsync());
        await using var right = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(withoutPassword.ConnectionString) { Password = (await File.ReadAllTextAsync(passwordFile)).Trim() }.ConnectionString);
        await right.OpenAsync();
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(passwordFile));
    }

    /// <summary>Exit code 2, and on stderr one line naming the running up by its pid, saying what to do; no stack trace.</summary>
    private void AssertRefusedInOneLine(DepinRun refused, string whatToDo)
    {
        Assert.Equal(2, refused.ExitCode);
        var line = Assert.Single(refused.Errors.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("error: depin up --no-fleet (pid " + running.Up.Pid + ") is running on " + Folder.DataDirectory, line);
        Assert.Contains(whatToDo, line);
        Assert.DoesNotContain("   at ", refused.Output);
    }
}

/// <summary>A host killed with SIGKILL leaves its PostgreSQL and anvil running; the next up takes them over and stops them (issue 11).</summary>
[Trait("Category", "Integration")]
public sealed class AdoptedPostgresTests
{
    [Fact]
    public async Task UpAfterAKilledUp_AdoptsItsPostgres_AndStopsItOnExit()
    {
        await using var folder = new DepinUp();
        var killed = folder.Start("up", "--no-fleet");
        await folder.WaitUntilHealthyAsync(killed);
        killed.Kill();
        Assert.True(await folder.PostgresRunningAsync(), "the cluster should outlive a SIGKILLed host");

        var next = folder.Start("up", "--no-fleet");
        await folder.WaitUntilHealthyAsync(next);
        Assert.Contains("Adopted the PostgreSQL server", next.Output);
        Assert.Contains("Adopted the anvil", next.Output);
        Assert.Equal(0, await next.StopAsync());

        Assert.False(await folder.PostgresRunningAsync(), $"the adopted cluster should stop with the up that adopted it:\n{next.Output}");
        var chainPort = int.Parse(folder.Environment["PIPELINE_CHAIN_PORT"], System.Globalization.CultureInfo.InvariantCulture);
        Assert.Null(AnvilNode.FindRunning(chainPort, Path.Combine(folder.DataDirectory, "chain", "anvil-state.json")));
        Assert.Equal("", await File.ReadAllTextAsync(Path.Combine(folder.DataDirectory, "depin.lock")));
    }
}
