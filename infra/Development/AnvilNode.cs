using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;

namespace Pipeline.Infra.Development;

/// <summary>Where and how to start a local anvil.</summary>
/// <param name="Executable">The anvil binary (see <see cref="AnvilNode.FindInTools"/> and <see cref="AnvilNode.FindExecutable"/>).</param>
/// <param name="Port">The port on 127.0.0.1; 0 lets anvil pick a free one.</param>
/// <param name="StateFile">If set, the chain is loaded from this file at start and written to it at a clean stop, so a restart keeps it.</param>
/// <param name="BlockTimeSeconds">0 mines a block per transaction; otherwise a block every this many seconds, as a real chain does.</param>
public sealed record AnvilOptions(string Executable, int Port = 0, string? StateFile = null, int BlockTimeSeconds = 0);

/// <summary>
/// A local anvil (foundry's development chain, from the npm packages in infra/tools): started on a port, ready once it
/// accepts connections, stopped with SIGTERM so that it writes its state file. Its ten default accounts are funded.
/// </summary>
public sealed partial class AnvilNode : IAsyncDisposable
{
    /// <summary>Anvil's first default account (from its well-known test mnemonic): a development operator, never a real key.</summary>
    public const string DefaultAccountKey = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

    private const string SetSid = "/usr/bin/setsid";

    private readonly Process _process;
    private readonly StringBuilder _output;

    private AnvilNode(Process process, StringBuilder output)
    {
        _process = process;
        _output = output;
    }

    public int Port { get; private set; }

    public string RpcUrl => $"http://127.0.0.1:{Port}";

    /// <summary>The anvil binary the @foundry-rs/anvil npm package installed under <paramref name="toolsFolder"/> (infra/tools).</summary>
    public static string FindInTools(string toolsFolder)
    {
        // The package's own launcher (node_modules/.bin/anvil) is a Node.js wrapper that exits on SIGTERM before anvil
        // has written its state; the platform package's binary is started directly instead.
        var foundry = Path.Combine(toolsFolder, "node_modules", "@foundry-rs");
        var binary = Directory.Exists(foundry)
            ? Directory.EnumerateDirectories(foundry, "anvil-*").Select(d => Path.Combine(d, "bin", "anvil")).FirstOrDefault(File.Exists)
            : null;
        return binary ?? throw new FileNotFoundException($"No anvil binary under {foundry}: run ./depin, which installs the npm tools in infra/tools.");
    }

    /// <summary>The anvil binary of the repository this program was built in: infra/tools in the nearest folder above it that has one.</summary>
    public static string FindExecutable()
    {
        for (var folder = new DirectoryInfo(AppContext.BaseDirectory); folder is not null; folder = folder.Parent)
        {
            var tools = Path.Combine(folder.FullName, "infra", "tools");
            if (Directory.Exists(Path.Combine(tools, "node_modules", "@foundry-rs"))) return FindInTools(tools);
        }
        throw new FileNotFoundException("No anvil found in infra/tools above this program: run ./depin, which installs the npm tools, or name a chain with PIPELINE_CHAIN.");
    }

    public static async Task<AnvilNode> StartAsync(AnvilOptions options, CancellationToken cancellationToken = default)
    {
        // In a session of its own (setsid execs anvil under the same pid): Ctrl-C in the terminal reaches the host, which
        // stops anvil with SIGTERM after the stages that use it, instead of anvil dying first under their feet.
        var start = new ProcessStartInfo(File.Exists(SetSid) ? SetSid : options.Executable)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        if (File.Exists(SetSid)) start.ArgumentList.Add(options.Executable);
        foreach (var argument in new[] { "--host", "127.0.0.1", "--port", options.Port.ToString() }) start.ArgumentList.Add(argument);
        if (options.StateFile is not null)
        {
            start.ArgumentList.Add("--state");
            start.ArgumentList.Add(options.StateFile);
        }
        if (options.BlockTimeSeconds > 0)
        {
            start.ArgumentList.Add("--block-time");
            start.ArgumentList.Add(options.BlockTimeSeconds.ToString());
        }
        var output = new StringBuilder();
        var listening = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (output) output.AppendLine(e.Data);
            if (ListeningLine().Match(e.Data) is { Success: true } match) listening.TrySetResult(int.Parse(match.Groups[1].Value));
        };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.Exited += (_, _) => listening.TrySetException(new InvalidOperationException($"anvil exited with {process.ExitCode} before listening:\n{Tail(output)}"));
        if (!process.Start()) throw new InvalidOperationException($"Could not start {options.Executable}.");
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();

        var node = new AnvilNode(process, output);
        try
        {
            node.Port = await listening.Task.WaitAsync(TimeSpan.FromSeconds(30), cancellationToken);
            // Listening is printed once the socket is bound; an accepted connection proves it is serving (the first
            // JSON-RPC call is the caller's, through Nethereum).
            using var probe = new TcpClient();
            await probe.ConnectAsync("127.0.0.1", node.Port, cancellationToken).AsTask().WaitAsync(TimeSpan.FromSeconds(10), cancellationToken);
            return node;
        }
        catch
        {
            await node.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// The anvil on <paramref name="port"/> that keeps its chain in <paramref name="stateFile"/>, if one runs: left behind by
    /// a host that was killed (SIGKILL gives it no chance to stop anvil). The caller takes it over and stops it in turn.
    /// </summary>
    public static AnvilNode? FindRunning(int port, string stateFile)
    {
        foreach (var folder in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(folder), out var pid)) continue;
            string[] arguments;
            try
            {
                arguments = File.ReadAllText(Path.Combine(folder, "cmdline")).Split('\0');
            }
            catch (IOException)
            {
                continue; // gone meanwhile
            }
            catch (UnauthorizedAccessException)
            {
                continue;
            }
            if (!arguments.Contains(stateFile) || !arguments.Contains(port.ToString()) || !arguments[0].EndsWith("/anvil", StringComparison.Ordinal)) continue;
            try
            {
                return new AnvilNode(Process.GetProcessById(pid), new StringBuilder()) { Port = port };
            }
            catch (ArgumentException)
            {
                return null; // exited since
            }
        }
        return null;
    }

    /// <summary>Stops anvil with SIGTERM (it writes its state file, if any) and waits for it to exit.</summary>
    public async Task StopAsync()
    {
        if (_process.HasExited) return;
        using (var kill = Process.Start("kill", ["-TERM", _process.Id.ToString()])) await kill.WaitForExitAsync();
        using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        try
        {
            await _process.WaitForExitAsync(patience.Token);
        }
        catch (OperationCanceledException)
        {
            _process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"anvil did not stop within 20 s of SIGTERM and was killed:\n{Tail(_output)}");
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await StopAsync();
        }
        finally
        {
            _process.Dispose();
        }
    }

    private static string Tail(StringBuilder output)
    {
        lock (output) return string.Join('\n', output.ToString().Split('\n').TakeLast(20));
    }

    [GeneratedRegex(@"^Listening on 127\.0\.0\.1:(\d+)")]
    private static partial Regex ListeningLine();
}
