using System.Globalization;
using System.Runtime.InteropServices;

namespace Pipeline.Cli.Hosting;

/// <summary>
/// Stops a stage process whose parent is gone. `depin chaos` and `depin bench e2e` start each stage as a child and
/// name themselves in PIPELINE_PARENT_PID; killed with SIGKILL they cannot stop their children, and a stage left
/// behind would hold its ports and keep consuming. Linux gives an orphan a new parent (init or a subreaper), so the
/// process checks that its parent is still the one named.
/// </summary>
public sealed partial class ParentWatch(int parent, IHostApplicationLifetime lifetime, ILogger<ParentWatch> logger) : BackgroundService
{
    public const string Variable = "PIPELINE_PARENT_PID";

    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(500);

    // A graceful stop that hangs (its database gone with the parent) must not leave the process behind either.
    private static readonly TimeSpan StopPatience = TimeSpan.FromSeconds(30);

    /// <summary>The parent named in the environment, when a supervising depin started this process.</summary>
    public static int? ParentFromEnvironment() =>
        int.TryParse(Environment.GetEnvironmentVariable(Variable), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) && pid > 1 ? pid : null;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            while (GetParentId() == parent) await Task.Delay(Poll, stoppingToken);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        logger.LogWarning("The process {Parent} that started this stage is gone; stopping", parent);
        lifetime.StopApplication();
        _ = Task.Delay(StopPatience, CancellationToken.None).ContinueWith(_ => Environment.Exit(1), TaskScheduler.Default);
    }

    [LibraryImport("libc", EntryPoint = "getppid")]
    private static partial int GetParentId();
}
