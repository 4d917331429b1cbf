using System.CommandLine;
using System.Security.Cryptography;
using System.Text.Json;
using Pipeline.Core.Crypto;
using Spectre.Console;

namespace Pipeline.Cli.Commands;

/// <summary>
/// `depin query` and `depin export`: clients of the marketplace API, as a buyer runs them from their own machine —
/// everything they do goes through HTTP with their key, so they see exactly what the API grants them.
/// </summary>
public static class MarketCommands
{
    public const string KeyVariable = "DEPIN_API_KEY";
    // A status request waits this long for the export to end, then answers its progress: the bar moves every second and
    // the end shows at once, with one request a second instead of a poll every quarter second.
    private const int ProgressWaitSeconds = 1;

    /// <summary>The options every marketplace command takes: where the API is, the buyer's key and the grant.</summary>
    private sealed class ClientOptions
    {
        public readonly Option<string> Api = new("--api") { Description = "The marketplace API.", DefaultValueFactory = _ => "http://127.0.0.1:5080" };
        public readonly Option<string?> Key = new("--key") { Description = $"The buyer's API key (dmk_…); default: the {KeyVariable} environment variable." };
        public readonly Option<string> Grant = new("--grant") { Description = "The grant to read (its id, from GET /v1/account).", Required = true };

        public void AddTo(Command command)
        {
            command.Options.Add(Api);
            command.Options.Add(Key);
            command.Options.Add(Grant);
        }

        public MarketplaceClient Client(ParseResult result)
        {
            var key = result.GetValue(Key) ?? Environment.GetEnvironmentVariable(KeyVariable);
            if (string.IsNullOrWhiteSpace(key)) throw new ArgumentException($"No API key: pass --key or set {KeyVariable} (an operator creates buyers and their keys with POST /v1/buyers).");
            if (!Uri.TryCreate(result.GetValue(Api), UriKind.Absolute, out var api) || api.Scheme is not ("http" or "https"))
                throw new ArgumentException($"--api takes an http(s) URL such as http://127.0.0.1:5080; '{result.GetValue(Api)}' is not one.");
            return new MarketplaceClient(api, key);
        }
    }

    public static Command Query()
    {
        var client = new ClientOptions();
        var sql = new Argument<string>("sql") { Description = "One SELECT over your grant's table (vehicle_signals or weather_observations, restricted to the granted rows)." };
        var format = new Option<string>("--format") { Description = "table (fitted to the terminal), csv, json or parquet (needs --out).", DefaultValueFactory = _ => "table" };
        format.AcceptOnlyFromAmong("table", "csv", "json", "parquet");
        var output = new Option<FileInfo?>("--out") { Description = "Write the result to this file instead of the terminal." };
        var command = new Command("query", "Run SQL over a grant through the marketplace API (metered against the grant) and print or save the result.") { sql, format, output };
        client.AddTo(command);
        command.SetAction(async (result, cancellation) =>
        {
            var (chosen, file) = (result.GetValue(format)!, result.GetValue(output));
            if (chosen == "parquet" && file is null) throw new ArgumentException("--format parquet writes a file: add --out FILE.");
            using var api = client.Client(result);
            var wire = chosen == "table" ? "json" : chosen;
            using var response = await api.SendAsync(HttpMethod.Post, "/v1/query", new { grant = result.GetValue(client.Grant), sql = result.GetValue(sql), format = wire }, cancellation);
            var rows = Header(response, "X-Rows");
            if (chosen == "table")
            {
                var table = Rows(await response.Content.ReadAsByteArrayAsync(cancellation));
                var lines = QueryResults.Table(table, Console.IsOutputRedirected || file is not null ? null : Console.WindowWidth);
                if (file is null) foreach (var line in lines) Console.WriteLine(line);
                else await File.WriteAllLinesAsync(file.FullName, lines, cancellation);
            }
            else
            {
                await using var target = file is null ? Console.OpenStandardOutput() : File.Create(file.FullName);
                await response.Content.CopyToAsync(target, cancellation);
            }
            var note = $"{rows ?? "?"} rows at lake checkpoint {Header(response, "X-Lake-Checkpoint") ?? "?"}";
            if (Header(response, "X-Truncated") == "true") note += "; cut at the grant's rows left or the result cap";
            Console.Error.WriteLine(file is null ? note : $"{note}; written to {file.FullName}");
            return 0;
        });
        return command;
    }

    public static Command Export()
    {
        var client = new ClientOptions();
        var shards = new Option<int>("--shards") { Description = "Split the rows into this many equal shards (for data-parallel training).", DefaultValueFactory = _ => 1 };
        var output = new Option<DirectoryInfo?>("--out") { Description = "Where to put the files and the manifest; default: ./export-<id>." };
        var command = new Command("export", "Export a grant as hive-partitioned Parquet through the marketplace API, download it and verify every file's SHA-256 and the manifest's signature.") { shards, output };
        client.AddTo(command);
        command.SetAction(async (result, cancellation) =>
        {
            using var api = client.Client(result);
            var started = await api.JsonAsync(HttpMethod.Post, "/v1/exports", new { grant = result.GetValue(client.Grant), shards = result.GetValue(shards) }, cancellation);
            var id = started.GetProperty("id").GetString()!;
            var job = await FollowAsync(api, id, cancellation);
            if (job.GetProperty("status").GetString() != "done")
                throw new InvalidOperationException($"export_failed: export {id} ended {job.GetProperty("status").GetString()}: {(job.TryGetProperty("error", out var e) ? e.GetString() : "no reason given")}");

            var folder = (result.GetValue(output) ?? new DirectoryInfo($"export-{id}")).FullName;
            var (files, rows, signer) = await DownloadAndVerifyAsync(api, id, folder, cancellation);
            AnsiConsole.MarkupLineInterpolated($"Export [blue]{id}[/]: {rows:N0} rows in {files} files in [blue]{folder}[/]; every SHA-256 matches and the manifest is signed by the marketplace ({signer}).");
            return 0;
        });
        return command;
    }

    /// <summary>Follows the job until it is no longer queued or running, with a bar on a terminal and a line per stage when piped.</summary>
    private static async Task<JsonElement> FollowAsync(MarketplaceClient api, string id, CancellationToken cancellation)
    {
        async Task<JsonElement> Follow(Action<JsonElement> show)
        {
            while (true)
            {
                var job = await api.JsonAsync(HttpMethod.Get, $"/v1/exports/{id}?wait={ProgressWaitSeconds}", null, cancellation);
                show(job);
                if (job.GetProperty("status").GetString() is not ("queued" or "running")) return job;
            }
        }

        static string Stage(JsonElement job) => job.TryGetProperty("stage", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString()! : job.GetProperty("status").GetString()!;

        if (Console.IsOutputRedirected)
        {
            string? shown = null;
            return await Follow(job =>
            {
                if (Stage(job) == shown) return;
                shown = Stage(job);
                Console.WriteLine($"Export {id}: {shown}");
            });
        }
        return await AnsiConsole.Progress().StartAsync(async progress =>
        {
            var bar = progress.AddTask($"Export {id}", maxValue: 1);
            var job = await Follow(job =>
            {
                bar.Description = $"Export {id}: {Stage(job)}";
                var total = job.TryGetProperty("total", out var t) ? t.GetInt32() : 0;
                if (total <= 0) return;
                bar.MaxValue = total;
                bar.Value = job.GetProperty("done").GetInt32();
            });
            bar.Value = bar.MaxValue;
            return job;
        });
    }

    /// <summary>
    /// Saves the manifest, its signature and every file it lists; refuses (and says which) when a file's SHA-256 differs
    /// from the manifest's or the signature does not recover to the signer the marketplace publishes.
    /// </summary>
    private static async Task<(int Files, long Rows, string Signer)> DownloadAndVerifyAsync(MarketplaceClient api, string id, string folder, CancellationToken cancellation)
    {
        var signer = EthAddress.Parse((await api.JsonAsync(HttpMethod.Get, "/v1/marketplace", null, cancellation)).GetProperty("signer").GetString()!);
        var manifestBytes = await api.BytesAsync($"/v1/exports/{id}/manifest", cancellation);
        var signature = System.Text.Encoding.ASCII.GetString(await api.BytesAsync($"/v1/exports/{id}/manifest.sig", cancellation)).Trim();
        var signatureBytes = new byte[PersonalSign.SignatureSize];
        var hex = signature.StartsWith("0x", StringComparison.Ordinal) ? signature[2..] : signature;
        if (!Hex.TryDecode(hex, signatureBytes)
            || PersonalSign.TryRecover(manifestBytes, signatureBytes, out var recovered) != SignatureCheck.Valid || recovered != signer)
            throw new InvalidOperationException($"bad_signature: the manifest of export {id} is not signed by the marketplace's signer {signer}; do not trust these files.");

        Directory.CreateDirectory(folder);
        await File.WriteAllBytesAsync(Path.Combine(folder, "manifest.json"), manifestBytes, cancellation);
        await File.WriteAllTextAsync(Path.Combine(folder, "manifest.json.sig"), signature, cancellation);
        var manifest = JsonDocument.Parse(manifestBytes).RootElement;
        var files = manifest.GetProperty("files").EnumerateArray().ToList();
        await AnsiConsole.Progress().StartAsync(async progress =>
        {
            var bar = progress.AddTask("Downloading", maxValue: Math.Max(1, files.Sum(f => f.GetProperty("bytes").GetInt64())));
            foreach (var file in files)
            {
                var path = file.GetProperty("path").GetString()!;
                var target = Path.GetFullPath(Path.Combine(folder, path));
                // The manifest is signed, but a path still must not leave the folder.
                if (!target.StartsWith(folder + Path.DirectorySeparatorChar, StringComparison.Ordinal))
                    throw new InvalidOperationException($"bad_manifest: file path '{path}' leaves the export folder.");
                var bytes = await api.BytesAsync($"/v1/exports/{id}/files/{path}", cancellation);
                var sha256 = Convert.ToHexStringLower(SHA256.HashData(bytes));
                if (sha256 != file.GetProperty("sha256").GetString())
                    throw new InvalidOperationException($"sha256_mismatch: {path} has SHA-256 {sha256}, the manifest says {file.GetProperty("sha256").GetString()}; the file was not kept.");
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                await File.WriteAllBytesAsync(target, bytes, cancellation);
                bar.Increment(bytes.Length);
            }
        });
        return (files.Count, manifest.GetProperty("rows").GetInt64(), signer.ToString());
    }

    /// <summary>The API's JSON result (an array of objects) as rows for the table: columns in the order of the first row.</summary>
    public static QueryResult Rows(byte[] json)
    {
        var array = JsonDocument.Parse(json).RootElement;
        var columns = array.GetArrayLength() == 0 ? [] : array[0].EnumerateObject().Select(p => p.Name).ToList();
        var rows = array.EnumerateArray().Select(row => columns.Select(c => Value(row.GetProperty(c))).ToArray()).ToList();
        return new QueryResult(columns, rows, Truncated: false);
    }

    private static object? Value(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Null => null,
        JsonValueKind.String => value.GetString(),
        JsonValueKind.Number => value.TryGetInt64(out var whole) ? whole : value.GetDouble(),
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => value.GetRawText(),
    };

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? string.Join(",", values) : null;
}
