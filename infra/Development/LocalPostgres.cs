using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Logging;
using Npgsql;
using Pipeline.Core.Files;
using Pipeline.Infra.Postgres;

namespace Pipeline.Infra.Development;

/// <summary>
/// A PostgreSQL cluster under the data folder for development and tests: created with initdb on first use,
/// started with pg_ctl (as the postgres user when we are root, since the server refuses to run as root), reused
/// when already running. Connections need the password generated with the cluster and kept beside it (0600), not
/// trust: anyone on the machine can reach a loopback port. Every failure says what to do instead of hanging.
/// </summary>
public sealed partial class LocalPostgres
{
    private readonly PostgresOptions _options;
    private readonly ILogger _logger;
    private readonly string _dataDirectory;
    private readonly string _binaries;
    private string? _password;

    public LocalPostgres(PostgresOptions options, string dataDirectory, ILogger logger)
    {
        _options = options;
        _logger = logger;
        _dataDirectory = Path.GetFullPath(options.DataDirectory ?? dataDirectory);
        _binaries = FindBinaries();
    }

    /// <summary>True when this instance started the server, or adopted it (and so should stop it).</summary>
    public bool StartedHere { get; private set; }

    /// <summary>The password of the cluster's postgres user: a file beside the cluster folder, readable by its owner only.</summary>
    public string PasswordFile => _dataDirectory + ".password";

    public string ConnectionString => new NpgsqlConnectionStringBuilder
    {
        Host = "127.0.0.1",
        Port = _options.Port,
        Username = "postgres",
        Password = _password ?? ReadPassword(),
        Database = _options.Database,
        // Enough for the pipeline's stages and parallel test classes together.
        MaxPoolSize = 40,
    }.ConnectionString;

    /// <summary>
    /// Uses the configured server, or starts the local one; ensures the database exists. Returns its connection string.
    /// With <paramref name="adoptRunning"/>, a local server found running counts as started here: it was left behind by
    /// a process that was killed, and the caller stops it when it stops.
    /// </summary>
    public static async Task<(string ConnectionString, LocalPostgres? Local)> EnsureAsync(PostgresOptions options, string dataDirectory, ILogger logger, CancellationToken cancellation, bool adoptRunning = false)
    {
        if (!string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            await WaitUntilReachableAsync(options.ConnectionString, cancellation);
            return (options.ConnectionString, null);
        }
        var local = new LocalPostgres(options, dataDirectory, logger);
        await local.StartAsync(cancellation, adoptRunning);
        return (local.ConnectionString, local);
    }

    public async Task StartAsync(CancellationToken cancellation, bool adoptRunning = false)
    {
        if (!File.Exists(Path.Combine(_dataDirectory, "PG_VERSION"))) await InitializeAsync(cancellation);

        if (await IsRunningAsync(cancellation))
        {
            StartedHere = adoptRunning;
            if (adoptRunning) _logger.LogWarning("Adopted the PostgreSQL server left running in {DataDirectory} by a process that was killed; it stops when this one does", _dataDirectory);
            else _logger.LogInformation("PostgreSQL already running in {DataDirectory}", _dataDirectory);
        }
        else
        {
            RemoveStalePidFile();
            EnsurePortIsFree();
            // Inside the cluster folder: the postgres user owns it and may write there.
            var log = Path.Combine(_dataDirectory, "server.log");
            // 128 MB of shared buffers (PostgreSQL's default): they fill as the store grows and then stay, and the
            // whole stack on one machine is to stay under 1.5 GB; the kernel's page cache holds what they do not.
            // pg_stat_statements (Debian's postgresql ships it) counts each statement's time, rows and blocks: what
            // `depin bench e2e` ranks PostgreSQL's share by, and what an operator asks first.
            var settings = $"-p {_options.Port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=200 -c shared_buffers=128MB -c shared_preload_libraries=pg_stat_statements";
            var result = await RunAsync("pg_ctl", ["start", "-D", _dataDirectory, "-w", "-t", "60", "-l", log, "-o", settings], cancellation);
            if (result.ExitCode != 0)
                throw new InvalidOperationException($"PostgreSQL did not start ({result.Output.Trim()}). Its log is {log}; `./depin reset` starts from an empty cluster.");
            StartedHere = true;
            _logger.LogInformation("PostgreSQL started on 127.0.0.1:{Port} from {DataDirectory}", _options.Port, _dataDirectory);
        }
        await RequirePasswordAsync(cancellation);
        await CreateDatabaseAsync(cancellation);
    }

    public async Task StopAsync()
    {
        if (!StartedHere) return;
        await RunAsync("pg_ctl", ["stop", "-D", _dataDirectory, "-m", "fast", "-w", "-t", "30"], CancellationToken.None);
        StartedHere = false;
        _logger.LogInformation("PostgreSQL stopped");
    }

    /// <summary>Stops the cluster in the data folder whoever started it (for reset).</summary>
    public async Task StopIfRunningAsync(CancellationToken cancellation)
    {
        if (!File.Exists(Path.Combine(_dataDirectory, "PG_VERSION")) || !await IsRunningAsync(cancellation)) return;
        StartedHere = true;
        await StopAsync();
    }

    private async Task InitializeAsync(CancellationToken cancellation)
    {
        Directory.CreateDirectory(_dataDirectory);
        if (Directory.EnumerateFileSystemEntries(_dataDirectory).Any())
            throw new InvalidOperationException($"{_dataDirectory} is not empty but holds no PostgreSQL cluster. Move it away or run `./depin reset`.");
        await GiveToServerUserAsync(_dataDirectory, cancellation);
        _logger.LogInformation("Creating a PostgreSQL cluster in {DataDirectory}", _dataDirectory);
        var password = NewPassword();
        // initdb reads the password from a file; as root it runs as the postgres user, who must be able to read it.
        var passwordForInitdb = Path.Combine(Path.GetTempPath(), $"depin-initdb-{Guid.NewGuid():N}");
        SecretFile.Write(passwordForInitdb, password);
        try
        {
            await GiveToServerUserAsync(passwordForInitdb, cancellation);
            var result = await RunAsync("initdb", ["-D", _dataDirectory, "-U", "postgres", "-A", "scram-sha-256", $"--pwfile={passwordForInitdb}", "-E", "UTF8", "--locale=C", "--no-sync"], cancellation);
            if (result.ExitCode != 0) throw new InvalidOperationException($"initdb failed: {result.Output.Trim()}");
        }
        finally
        {
            File.Delete(passwordForInitdb);
        }
        SecretFile.Write(PasswordFile, password);
        _password = password;
    }

    /// <summary>
    /// A cluster made before passwords were used trusts every local connection: give the postgres user a password (kept
    /// in <see cref="PasswordFile"/>) and make pg_hba.conf ask for it.
    /// </summary>
    private async Task RequirePasswordAsync(CancellationToken cancellation)
    {
        var hba = Path.Combine(_dataDirectory, "pg_hba.conf");
        var lines = await File.ReadAllLinesAsync(hba, cancellation);
        var trusting = lines.Select(line => !line.TrimStart().StartsWith('#') && TrustMethod().IsMatch(line)).ToArray();
        if (!trusting.Contains(true)) return;
        _password = File.Exists(PasswordFile) ? ReadPassword() : NewPassword();
        await using (var connection = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(ConnectionString) { Database = "postgres", Pooling = false }.ConnectionString))
        {
            await connection.OpenAsync(cancellation);
            // ALTER ROLE takes no parameters; the password is hex, so quoting it is safe.
            await using var alter = new NpgsqlCommand($"ALTER ROLE postgres PASSWORD '{_password}'", connection);
            await alter.ExecuteNonQueryAsync(cancellation);
            SecretFile.Write(PasswordFile, _password);
            await File.WriteAllLinesAsync(hba, lines.Select((line, i) => trusting[i] ? TrustMethod().Replace(line, "scram-sha-256") : line), cancellation);
            await using var reload = new NpgsqlCommand("SELECT pg_reload_conf()", connection);
            await reload.ExecuteNonQueryAsync(cancellation);
        }
        _logger.LogWarning("The PostgreSQL cluster in {DataDirectory} trusted every local connection; it now asks for the password in {PasswordFile}", _dataDirectory, PasswordFile);
    }

    [GeneratedRegex(@"\btrust\b")]
    private static partial Regex TrustMethod();

    private static string NewPassword() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(24));

    private string ReadPassword()
    {
        try
        {
            return _password = File.ReadAllText(PasswordFile).Trim();
        }
        catch (FileNotFoundException)
        {
            throw new InvalidOperationException($"The local PostgreSQL cluster's password file {PasswordFile} is missing. Run `./depin reset` to start from an empty cluster.");
        }
    }

    /// <summary>Whether a server runs on the cluster folder (pg_ctl status), whoever started it.</summary>
    public async Task<bool> IsRunningAsync(CancellationToken cancellation) =>
        (await RunAsync("pg_ctl", ["status", "-D", _dataDirectory], cancellation)).ExitCode == 0;

    private void RemoveStalePidFile()
    {
        var pidFile = Path.Combine(_dataDirectory, "postmaster.pid");
        if (!File.Exists(pidFile)) return;
        var firstLine = File.ReadLines(pidFile).FirstOrDefault();
        if (int.TryParse(firstLine, out var pid) && IsPostgresProcess(pid))
            throw new InvalidOperationException($"A PostgreSQL process (PID {pid}) holds {_dataDirectory} but does not answer. Stop it (kill {pid}) and run again.");
        File.Delete(pidFile);
        _logger.LogWarning("Removed a stale postmaster.pid (PID {Pid} is not running)", firstLine);
    }

    private static bool IsPostgresProcess(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline").Contains("postgres", StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false;
        }
    }

    private void EnsurePortIsFree()
    {
        try
        {
            using var listener = new TcpListener(IPAddress.Loopback, _options.Port);
            listener.Start();
        }
        catch (SocketException)
        {
            throw new InvalidOperationException($"Port {_options.Port} on 127.0.0.1 is in use by another program. Stop it, or choose another port with PIPELINE_POSTGRES_PORT, or point PIPELINE_POSTGRES at a running server.");
        }
    }

    private async Task CreateDatabaseAsync(CancellationToken cancellation)
    {
        var admin = new NpgsqlConnectionStringBuilder(ConnectionString) { Database = "postgres", Pooling = false }.ConnectionString;
        await using var connection = new NpgsqlConnection(admin);
        await connection.OpenAsync(cancellation);
        // Its view, in the maintenance database, shows every database's statements (a server left running from
        // before the preload has no counters: the view then says to restart it).
        await using (var extension = new NpgsqlCommand("CREATE EXTENSION IF NOT EXISTS pg_stat_statements", connection))
        {
            try
            {
                await extension.ExecuteNonQueryAsync(cancellation);
            }
            catch (PostgresException e) when (e.SqlState is PostgresErrorCodes.UniqueViolation or PostgresErrorCodes.DuplicateObject)
            {
                // Another process starting on the same cluster created it first.
            }
        }
        await using var exists = new NpgsqlCommand("SELECT 1 FROM pg_database WHERE datname = $1", connection) { Parameters = { new() { Value = _options.Database } } };
        if (await exists.ExecuteScalarAsync(cancellation) is not null) return;
        await using var create = new NpgsqlCommand($"CREATE DATABASE \"{_options.Database}\"", connection);
        await create.ExecuteNonQueryAsync(cancellation);
    }

    private static async Task WaitUntilReachableAsync(string connectionString, CancellationToken cancellation)
    {
        try
        {
            await using var connection = new NpgsqlConnection(connectionString);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
            timeout.CancelAfter(TimeSpan.FromSeconds(15));
            await connection.OpenAsync(timeout.Token);
        }
        catch (Exception e) when (e is NpgsqlException or OperationCanceledException && !cancellation.IsCancellationRequested)
        {
            throw new InvalidOperationException($"Cannot reach the PostgreSQL server named by PIPELINE_POSTGRES: {e.Message}. Check the connection string, or unset it to use the local cluster.", e);
        }
    }

    // The server refuses to run as root: as root, the cluster belongs to the postgres user that Debian's package creates.
    private static bool RunningAsRoot => Environment.UserName == "root";

    private async Task GiveToServerUserAsync(string path, CancellationToken cancellation)
    {
        if (!RunningAsRoot) return;
        MakeAncestorsTraversable();
        var result = await RunProcessAsync("chown", ["-R", "postgres:postgres", path], cancellation);
        if (result.ExitCode != 0) throw new InvalidOperationException($"Could not hand {path} to the postgres user: {result.Output.Trim()}");
    }

    /// <summary>
    /// The postgres user must pass through every folder above the cluster. A clone under a private folder (mktemp -d,
    /// /root) blocks it, so as root we add the traverse bit (o+x, not read) to such folders and say so.
    /// </summary>
    private void MakeAncestorsTraversable()
    {
        if (OperatingSystem.IsWindows()) return;
        for (var folder = Directory.GetParent(_dataDirectory); folder is not null; folder = folder.Parent)
        {
            var mode = File.GetUnixFileMode(folder.FullName);
            if (mode.HasFlag(UnixFileMode.OtherExecute)) continue;
            File.SetUnixFileMode(folder.FullName, mode | UnixFileMode.OtherExecute);
            _logger.LogWarning("Made {Folder} traversable (o+x) so the postgres user can reach its cluster", folder.FullName);
        }
    }

    private Task<(int ExitCode, string Output)> RunAsync(string tool, IReadOnlyList<string> arguments, CancellationToken cancellation)
    {
        var path = Path.Combine(_binaries, tool);
        return RunningAsRoot ? RunProcessAsync("runuser", ["-u", "postgres", "--", path, .. arguments], cancellation) : RunProcessAsync(path, arguments, cancellation);
    }

    private static async Task<(int ExitCode, string Output)> RunProcessAsync(string fileName, IReadOnlyList<string> arguments, CancellationToken cancellation)
    {
        var start = new ProcessStartInfo(fileName) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = "/" };
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {fileName}.");
        var output = process.StandardOutput.ReadToEndAsync(cancellation);
        var error = process.StandardError.ReadToEndAsync(cancellation);
        await process.WaitForExitAsync(cancellation);
        return (process.ExitCode, await output + await error);
    }

    private static string FindBinaries()
    {
        var versions = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Where(d => File.Exists(Path.Combine(d, "bin", "pg_ctl"))).OrderByDescending(d => int.TryParse(Path.GetFileName(d), out var v) ? v : 0).ToList()
            : [];
        return versions.Count > 0
            ? Path.Combine(versions[0], "bin")
            : throw new InvalidOperationException("PostgreSQL's server binaries are not installed (no /usr/lib/postgresql/*/bin/pg_ctl). ./depin installs Debian's postgresql package.");
    }
}
