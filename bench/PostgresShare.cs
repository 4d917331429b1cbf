using System.Globalization;
using Npgsql;
using Spectre.Console;

namespace Pipeline.Bench;

/// <summary>
/// Where PostgreSQL's CPU goes during a step of `bench e2e` (issue 16): the CPU of each server process by who it
/// serves (the stage a backend's connection is named after, or the background process's kind), the statements
/// pg_stat_statements counted (time, rows, blocks, WAL), and the server's own work (checkpoints, WAL, autovacuum,
/// sessions opened). Counters are reset when the step starts, so the figures are the step's alone.
/// </summary>
internal sealed class PostgresShare
{
    private const int Statements = 15;

    private readonly string _connectionString;
    private readonly string _postgresFolder;
    private readonly Dictionary<int, long> _ticksAtStart;
    private readonly long _reapedAtStart;

    private PostgresShare(string connectionString, string postgresFolder, Dictionary<int, long> ticksAtStart, long reapedAtStart)
    {
        _connectionString = connectionString;
        _postgresFolder = postgresFolder;
        _ticksAtStart = ticksAtStart;
        _reapedAtStart = reapedAtStart;
    }

    /// <summary>Resets the server's counters and notes each server process's CPU so far.</summary>
    public static async Task<PostgresShare> StartAsync(string connectionString, string postgresFolder)
    {
        await using (var connection = await OpenAsync(connectionString))
        await using (var reset = new NpgsqlCommand(
            $"SELECT pg_stat_reset(), pg_stat_reset_shared('bgwriter'), pg_stat_reset_shared('wal'){(connection.PostgreSqlVersion.Major >= 17 ? ", pg_stat_reset_shared('checkpointer')" : "")}", connection))
            await reset.ExecuteNonQueryAsync();
        // In the maintenance database, where the local cluster keeps the extension.
        await using (var connection = await OpenAsync(connectionString, "postgres"))
        await using (var reset = new NpgsqlCommand("SELECT pg_stat_statements_reset()", connection))
            await reset.ExecuteNonQueryAsync();
        var processes = ServerProcesses(postgresFolder);
        return new PostgresShare(connectionString, postgresFolder, processes.ToDictionary(p => p, p => Ticks(p, withReapedChildren: false)), ReapedTicks(processes[0]));
    }

    /// <summary>Prints the step's ranking, per reading of the <paramref name="readings"/> acknowledged.</summary>
    public async Task PrintAsync(long readings)
    {
        var perReading = 1e6 / Math.Max(1, readings);
        await PrintCpuAsync(perReading);
        await PrintStatementsAsync(perReading);
        await PrintServerWorkAsync(readings);
    }

    private async Task PrintCpuAsync(double perReading)
    {
        var processes = ServerProcesses(_postgresFolder);
        var labels = new Dictionary<int, string>();
        await using (var connection = await OpenAsync(_connectionString))
        await using (var command = new NpgsqlCommand("SELECT pid, backend_type, application_name FROM pg_stat_activity", connection))
        await using (var reader = await command.ExecuteReaderAsync())
            while (await reader.ReadAsync())
                labels[reader.GetInt32(0)] = reader.GetString(1) == "client backend"
                    ? $"backend: {(reader.IsDBNull(2) || reader.GetString(2) == "" ? "(unnamed)" : reader.GetString(2))}"
                    : reader.GetString(1);
        var seconds = new Dictionary<string, double>();
        void Add(string label, long ticks) => seconds[label] = seconds.GetValueOrDefault(label) + ticks * TickSeconds;
        foreach (var pid in processes)
            Add(pid == processes[0] ? "postmaster" : labels.GetValueOrDefault(pid, "other server process"), Ticks(pid, withReapedChildren: false) - _ticksAtStart.GetValueOrDefault(pid));
        // A process that ended during the step counts in the postmaster's reaped time, whole: less what it had spent before.
        Add("ended processes (closed connections, autovacuum workers)", ReapedTicks(processes[0]) - _reapedAtStart
            - _ticksAtStart.Where(p => !processes.Contains(p.Key)).Sum(p => p.Value));
        var total = seconds.Values.Sum();
        var table = new Table().Title("[bold]PostgreSQL's CPU in this step, by server process[/]").AddColumn("Serving")
            .AddColumn(new TableColumn("CPU s").RightAligned()).AddColumn(new TableColumn("µs/reading").RightAligned()).AddColumn(new TableColumn("Share").RightAligned());
        foreach (var (label, cpu) in seconds.Where(s => s.Value > 0).OrderByDescending(s => s.Value))
            table.AddRow(Markup.Escape(label), $"{cpu:N2}", $"{cpu * perReading:N1}", $"{cpu / Math.Max(1e-9, total):P0}");
        table.AddRow("[bold]all[/]", $"{total:N2}", $"{total * perReading:N1}", "");
        table.Caption("From /proc/<pid>/stat, each backend named by its connection's application_name (pg_stat_activity).");
        AnsiConsole.Write(table);
    }

    private async Task PrintStatementsAsync(double perReading)
    {
        await using var connection = await OpenAsync(_connectionString, "postgres");
        await using var command = new NpgsqlCommand($"""
            SELECT query, calls, rows, total_exec_time, total_plan_time, shared_blks_hit, shared_blks_read, shared_blks_dirtied, shared_blks_written, wal_bytes,
                   sum(total_exec_time + total_plan_time) OVER ()
            FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = $1)
            ORDER BY total_exec_time + total_plan_time DESC LIMIT {Statements}
            """, connection) { Parameters = { new() { Value = new NpgsqlConnectionStringBuilder(_connectionString).Database } } };
        var table = new Table().Title($"[bold]Statements by time in this step (pg_stat_statements, top {Statements})[/]").AddColumn("Statement")
            .AddColumn(new TableColumn("Calls").RightAligned()).AddColumn(new TableColumn("Rows").RightAligned()).AddColumn(new TableColumn("Time ms").RightAligned())
            .AddColumn(new TableColumn("µs/reading").RightAligned()).AddColumn(new TableColumn("Share").RightAligned()).AddColumn(new TableColumn("Blocks hit").RightAligned())
            .AddColumn(new TableColumn("read").RightAligned()).AddColumn(new TableColumn("dirtied").RightAligned()).AddColumn(new TableColumn("WAL KB").RightAligned());
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            var time = reader.GetDouble(3) + reader.GetDouble(4);
            var query = string.Join(' ', reader.GetString(0).Split((char[])['\n', '\r', '\t', ' '], StringSplitOptions.RemoveEmptyEntries));
            table.AddRow(Markup.Escape(query.Length > 110 ? query[..110] + "…" : query), $"{reader.GetInt64(1):N0}", $"{reader.GetInt64(2):N0}", $"{time:N0}",
                $"{time * 1e3 * perReading / 1e6:N1}", $"{time / Math.Max(1e-9, reader.GetDouble(10)):P0}", $"{reader.GetInt64(5):N0}", $"{reader.GetInt64(6):N0}",
                $"{reader.GetInt64(7):N0}", $"{reader.GetDecimal(9) / 1024:N0}");
        }
        table.Caption("Time is the server's execution (and planning) time, wall clock: it includes waits, so it ranks rather than measures CPU.");
        AnsiConsole.Write(table);
    }

    private async Task PrintServerWorkAsync(long readings)
    {
        await using var connection = await OpenAsync(_connectionString);
        var checkpoints = connection.PostgreSqlVersion.Major >= 17
            ? "SELECT num_timed, num_requested, buffers_written, (SELECT buffers_clean FROM pg_stat_bgwriter), 0::bigint FROM pg_stat_checkpointer"
            : "SELECT checkpoints_timed, checkpoints_req, buffers_checkpoint, buffers_clean, buffers_backend FROM pg_stat_bgwriter";
        await using var command = new NpgsqlCommand($"""
            {checkpoints};
            SELECT wal_records, wal_fpi, wal_bytes, wal_write, wal_sync FROM pg_stat_wal;
            SELECT sessions, xact_commit, xact_rollback FROM pg_stat_database WHERE datname = current_database();
            SELECT relname, autovacuum_count, autoanalyze_count, n_tup_ins, n_tup_upd, n_tup_hot_upd, n_tup_del, n_dead_tup FROM pg_stat_user_tables
            WHERE n_tup_ins + n_tup_upd + n_tup_del + autovacuum_count + autoanalyze_count > 0 ORDER BY n_tup_ins + n_tup_upd + n_tup_del DESC
            """, connection);
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        AnsiConsole.MarkupLineInterpolated($"  Checkpoints: {reader.GetInt64(0)} timed, {reader.GetInt64(1)} requested; buffers written by the checkpointer {reader.GetInt64(2):N0}, the background writer {reader.GetInt64(3):N0}, backends {reader.GetInt64(4):N0}.");
        await reader.NextResultAsync();
        await reader.ReadAsync();
        AnsiConsole.MarkupLineInterpolated($"  WAL: {reader.GetInt64(0):N0} records ({reader.GetInt64(0) / (double)Math.Max(1, readings):N1} per reading), {reader.GetInt64(1):N0} full-page images, {reader.GetDecimal(2) / Math.Max(1, readings):N0} bytes per reading, {reader.GetInt64(3):N0} writes, {reader.GetInt64(4):N0} syncs.");
        await reader.NextResultAsync();
        await reader.ReadAsync();
        AnsiConsole.MarkupLineInterpolated($"  Sessions opened: {reader.GetInt64(0):N0}; transactions committed {reader.GetInt64(1):N0} ({reader.GetInt64(1) / (double)Math.Max(1, readings):N2} per reading), rolled back {reader.GetInt64(2):N0}.");
        await reader.NextResultAsync();
        var tables = new Table().Title("[bold]Tables written in this step[/]").AddColumn("Table").AddColumn(new TableColumn("Inserted").RightAligned())
            .AddColumn(new TableColumn("Updated").RightAligned()).AddColumn(new TableColumn("of them HOT").RightAligned()).AddColumn(new TableColumn("Deleted").RightAligned())
            .AddColumn(new TableColumn("Dead now").RightAligned()).AddColumn(new TableColumn("Autovacuums").RightAligned()).AddColumn(new TableColumn("Autoanalyzes").RightAligned());
        while (await reader.ReadAsync())
            tables.AddRow(Markup.Escape(reader.GetString(0)), $"{reader.GetInt64(3):N0}", $"{reader.GetInt64(4):N0}", $"{reader.GetInt64(5):N0}", $"{reader.GetInt64(6):N0}",
                $"{reader.GetInt64(7):N0}", $"{reader.GetInt64(1):N0}", $"{reader.GetInt64(2):N0}");
        AnsiConsole.Write(tables);
    }

    /// <summary>A connection of its own (named, so its CPU shows as the bench's), to the pipeline's database or to <paramref name="database"/>.</summary>
    private static async Task<NpgsqlConnection> OpenAsync(string connectionString, string? database = null)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false, ApplicationName = "depin-bench" };
        if (database is not null) builder.Database = database;
        var connection = new NpgsqlConnection(builder.ConnectionString);
        await connection.OpenAsync();
        return connection;
    }

    /// <summary>One tick of /proc/&lt;pid&gt;/stat's CPU counts: USER_HZ, 100 a second on Linux.</summary>
    private const double TickSeconds = 0.01;

    public static TimeSpan Cpu(long ticks) => TimeSpan.FromSeconds(ticks * TickSeconds);

    /// <summary>utime + stime, and cutime + cstime (children waited for) when asked; 0 for a process that has ended.</summary>
    public static long Ticks(int pid, bool withReapedChildren)
    {
        var fields = StatFields(pid);
        if (fields is null) return 0;
        // Fields after the command's closing parenthesis, from the state (field 3): utime is field 14, stime 15, cutime 16, cstime 17.
        var ticks = long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        return withReapedChildren ? ticks + ReapedTicks(pid) : ticks;
    }

    private static long ReapedTicks(int pid) => StatFields(pid) is { } fields
        ? long.Parse(fields[13], CultureInfo.InvariantCulture) + long.Parse(fields[14], CultureInfo.InvariantCulture)
        : 0;

    private static string[]? StatFields(int pid)
    {
        try
        {
            var text = File.ReadAllText($"/proc/{pid}/stat");
            return text[(text.LastIndexOf(')') + 2)..].Split(' ');
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>The postmaster (first) and its children (backends, writer, checkpointer…), found through /proc.</summary>
    public static List<int> ServerProcesses(string postgresFolder)
    {
        var pidFile = Directory.EnumerateFiles(postgresFolder, "postmaster.pid", SearchOption.AllDirectories).First();
        var postmaster = int.Parse(File.ReadLines(pidFile).First(), CultureInfo.InvariantCulture);
        var pids = new List<int> { postmaster };
        foreach (var stat in Directory.EnumerateDirectories("/proc").Where(d => int.TryParse(Path.GetFileName(d), out _)))
        {
            // Fields after the command's closing parenthesis: state, then the parent's pid.
            if (StatFields(int.Parse(Path.GetFileName(stat), CultureInfo.InvariantCulture)) is [_, var parent, ..] && parent == $"{postmaster}")
                pids.Add(int.Parse(Path.GetFileName(stat), CultureInfo.InvariantCulture));
        }
        return pids;
    }
}
