using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Pipeline.Cli.Chaos;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Cli;

/// <summary>
/// Issue 16: `./depin bench streams` went on waiting for its processors after SIGTERM or Ctrl-C (the host inside it took
/// the signal, the bench's loop did not). Stopped while it waits, it must end at once, say why, and leave nothing of
/// its own running — its scratch PostgreSQL included.
/// </summary>
[Trait("Category", "Integration")]
public sealed class BenchInterruptTests
{
    [Fact]
    public async Task BenchStreams_SigtermWhileWaitingForTheProcessors_EndsWithinSecondsAndLeavesNothingRunning_Issue16()
    {
        var bench = Path.Combine(RepositoryTools.Root, "bench", "bin", new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name, "net10.0", "Pipeline.Bench.dll");
        Assert.True(File.Exists(bench), $"The bench is not built at {bench}: ./depin test builds it.");
        var output = new StringBuilder();
        var start = new ProcessStartInfo("dotnet", [bench, "streams", "1"]) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = RepositoryTools.Root };
        using var process = Process.Start(start)!;
        process.OutputDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        string Output() { lock (output) return output.ToString(); }
        try
        {
            // Past signing and producing: the bench waits for the processors it runs in-process.
            var waiting = Stopwatch.StartNew();
            while (!Output().Contains("Processors: consuming", StringComparison.Ordinal))
            {
                Assert.False(process.HasExited, "The bench ended before its processors ran:\n" + Output());
                Assert.True(waiting.Elapsed < TimeSpan.FromMinutes(5), "The bench did not reach its processors in 5 minutes:\n" + Output());
                await Task.Delay(100);
            }
            var folder = Regex.Match(Output(), @"Scratch servers in (\S+)").Groups[1].Value;
            Assert.NotEmpty(folder);
            Assert.NotEmpty(ProcessesUsing(folder));

            Assert.True(Signals.Send(process.Id, Signals.Term));
            var stopping = Stopwatch.StartNew();
            Assert.True(await Task.Run(() => process.WaitForExit(TimeSpan.FromSeconds(30))), "The bench was still running 30 s after SIGTERM:\n" + Output());
            Assert.True(stopping.Elapsed < TimeSpan.FromSeconds(15), $"The bench took {stopping.Elapsed.TotalSeconds:F1} s to stop.");
            process.WaitForExit(); // the timed wait does not read the output to its end; this one does
            Assert.Equal(128 + Signals.Term, process.ExitCode);
            Assert.Contains("Stopped by SIGTERM", Output(), StringComparison.Ordinal);
            Assert.Empty(ProcessesUsing(folder));
        }
        finally
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
    }

    /// <summary>Processes whose command line names the folder: the scratch PostgreSQL's server processes.</summary>
    private static List<int> ProcessesUsing(string folder)
    {
        var found = new List<int>();
        foreach (var entry in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(entry), out var pid)) continue;
            try
            {
                if (File.ReadAllText(Path.Combine(entry, "cmdline")).Contains(folder, StringComparison.Ordinal)) found.Add(pid);
            }
            catch (IOException)
            {
                // ended meanwhile
            }
            catch (UnauthorizedAccessException)
            {
                // not ours to read
            }
        }
        return found;
    }
}
