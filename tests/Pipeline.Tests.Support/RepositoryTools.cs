using System.Diagnostics;

namespace Pipeline.Tests.Support;

/// <summary>Runs the independent tools ./depin installs under infra/tools (cast, node with ethers).</summary>
public static class RepositoryTools
{
    public static string Root { get; } = FindRoot();

    public static string ToolsFolder => Path.Combine(Root, "infra", "tools");

    public static string Cast => Path.Combine(ToolsFolder, "node_modules", ".bin", "cast");

    public static string Run(string fileName, IEnumerable<string> arguments, string? standardInput = null, string? workingDirectory = null)
    {
        var start = new ProcessStartInfo(fileName)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = standardInput is not null,
            WorkingDirectory = workingDirectory ?? Root,
        };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {fileName}.");
        if (standardInput is not null)
        {
            process.StandardInput.Write(standardInput);
            process.StandardInput.Close();
        }
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(TimeSpan.FromMinutes(2))) process.Kill(entireProcessTree: true);
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{Path.GetFileName(fileName)} exited with {process.ExitCode}: {error.Result}. Run ./depin test, which installs the tools.");
        return output.Result.Trim();
    }

    /// <summary>
    /// Runs a Node.js script with infra/tools/node_modules on its module path; the input, if any, is a file whose path
    /// is <c>process.argv[1]</c>. Not stdin: node's synchronous read of a pipe fails with EAGAIN when the pipe is
    /// non-blocking, which it sometimes is.
    /// </summary>
    public static string Node(string script, string? input = null)
    {
        if (input is null) return Run("node", ["--input-type=commonjs", "-e", script], null, ToolsFolder);
        var inputFile = Path.GetTempFileName();
        try
        {
            File.WriteAllText(inputFile, input);
            return Run("node", ["--input-type=commonjs", "-e", script, inputFile], null, ToolsFolder);
        }
        finally
        {
            File.Delete(inputFile);
        }
    }

    /// <summary>The address (lower-case hex) that ethers' <c>verifyMessage</c> recovers from an EIP-191 signature over the message.</summary>
    public static string EthersRecover(string message, string signature) => Node(
        "const { verifyMessage } = require('ethers'); const input = JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8')); console.log(verifyMessage(input.message, input.signature).toLowerCase());",
        System.Text.Json.JsonSerializer.Serialize(new { message, signature }));

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Pipeline.sln"))) return dir.FullName;
        }
        throw new InvalidOperationException("Tests run from inside the repository (no Pipeline.sln above " + AppContext.BaseDirectory + ").");
    }
}
