using System.Globalization;
using Apache.Arrow;
using DuckDB.NET.Data;

namespace Pipeline.Marketplace.Sandbox;

/// <summary>
/// What a query delivered: rows and bytes written (what is metered), whether a cap cut it short, and the lake checkpoint
/// it was read at. <see cref="Delivered"/>: the rows per device and epoch, when the caller asked for them and the query's
/// rows are the view's one for one, so that the view's own device and time could be carried along unseen
/// (<see cref="CarriedColumns"/>). Columns the query names itself are never trusted: it can put any value there.
/// </summary>
public sealed record QueryResult(long Rows, long Bytes, bool Truncated, long LakeCheckpoint, IReadOnlyList<string> Columns, IReadOnlyList<Attribution.DeviceShare>? Delivered = null);

/// <summary>
/// A fresh in-memory DuckDB for one buyer's queries: a view per grant restricted to the granted rows over exactly the
/// granted files, then locked down — external access off except those files, no extensions installed or loaded,
/// memory and threads bounded, configuration locked. Each statement is validated (<see cref="SqlValidator"/>) before it
/// runs, interrupted at the time limit, and its result is cut at the row and byte caps. Not thread-safe: one query at a time.
/// </summary>
public sealed class SqlSandbox : IDisposable
{
    private readonly DuckDBConnection _connection;
    private readonly SandboxLimits _limits;
    private readonly Dictionary<string, GrantedTable> _granted;
    private readonly HashSet<string> _tables;
    private readonly Dictionary<(string Table, TimeSpan Epoch), IReadOnlyList<Attribution.DeviceShare>> _shares = [];
    private readonly ValidatedStatements? _validated;
    private readonly string _scope;

    private SqlSandbox(DuckDBConnection connection, SandboxLimits limits, IReadOnlyList<GrantedTable> tables, ValidatedStatements? validated)
    {
        _connection = connection;
        _limits = limits;
        _granted = tables.ToDictionary(t => t.Name, StringComparer.Ordinal);
        _tables = _granted.Keys.ToHashSet(StringComparer.Ordinal);
        _validated = validated;
        // Everything a verdict depends on besides the text (the views' names and shapes, as the rewrite names their columns,
        // and the limits), and the views' rows: only buyers of exactly the same rows share what they ran (its timing tells).
        _scope = string.Join("\n", tables.OrderBy(t => t.Name, StringComparer.Ordinal).Select(t => $"{t.Name} {t.Shape} {RowCondition(t.Shape, t.Rows)}")) + "\n" + limits;
    }

    /// <summary>The views a query may read, by name.</summary>
    public IReadOnlySet<string> Tables => _tables;

    /// <summary>What this sandbox's validated statements are remembered under (<see cref="ValidatedStatements"/>).</summary>
    internal string Scope => _scope;

    /// <summary>
    /// Opens a sandbox over <paramref name="tables"/>; throws <see cref="ArgumentException"/> when a description is invalid.
    /// With <paramref name="validated"/>, statements that passed lately (in any sandbox over the same views and limits) are not parsed again.
    /// </summary>
    public static SqlSandbox Open(IReadOnlyList<GrantedTable> tables, SandboxLimits limits, ValidatedStatements? validated = null)
    {
        var errors = tables.SelectMany(t => t.Errors()).Concat(limits.Errors()).ToList();
        if (tables.Select(t => t.Name).Distinct().Count() != tables.Count) errors.Add("Table names must be distinct.");
        if (errors.Count > 0) throw new ArgumentException(string.Join(" ", errors), nameof(tables));

        var connection = new DuckDBConnection("DataSource=:memory:");
        try
        {
            connection.Open();
            var files = tables.SelectMany(t => t.Files).Distinct().ToList();
            // Order matters: what external access forbids must be set before it is switched off, and the lock comes last.
            foreach (var setting in new[]
            {
                "SET TimeZone = 'UTC'",
                "SET temp_directory = ''", // nothing spills to disk: memory_limit is the bound
                "SET autoinstall_known_extensions = false",
                "SET autoload_known_extensions = false",
                "SET allow_community_extensions = false",
                $"SET memory_limit = '{limits.MemoryLimitMegabytes.ToString(CultureInfo.InvariantCulture)}MB'",
                $"SET threads = {limits.Threads.ToString(CultureInfo.InvariantCulture)}",
                $"SET allowed_paths = [{string.Join(", ", files.Select(Literal))}]",
                "SET enable_external_access = false",
            }) Execute(connection, setting);
            foreach (var table in tables)
            {
                if (DevicesTable(table) is { } devices) CreateDevicesTable(connection, devices, table.Rows.Devices!);
                Execute(connection, ViewSqlOver(table, DevicesTable(table)));
            }
            Execute(connection, "SET lock_configuration = true");
            return new SqlSandbox(connection, limits, tables, validated);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The view of one grant: its files, its rows. A file whose whole day (its <c>date=</c> partition, the UTC day of every
    /// row's time, as the lake writes it) lies inside the grant's time range is read without the time condition: it
    /// holds nothing outside it, and the condition makes DuckDB read and test every row's time, even for a query that
    /// reads none (12–52 % slower on the bench's lake). The other files keep it.
    /// </summary>
    public static string ViewSql(GrantedTable table) => ViewSqlOver(table, devicesTable: null);

    // A grant's device list longer than this is a table of the sandbox that its view reads, not a list in the view's SQL,
    // which DuckDB binds again at every query: with a make that strangers registered 10,000 devices under, a query took
    // 0.7 s (0.05 without them). Shorter lists stay literals, which DuckDB pushes into the Parquet scan.
    private const int LiteralDevicesLimit = 100;

    private const string DevicesSchema = "granted_devices";

    // Outside the main schema, where the buyer's unqualified names are looked up (the validator refuses qualified ones).
    private static string? DevicesTable(GrantedTable table) =>
        table.Rows.Devices is { Count: > LiteralDevicesLimit } ? $"{DevicesSchema}.{table.Name}" : null;

    private static void CreateDevicesTable(DuckDBConnection connection, string name, IEnumerable<string> devices)
    {
        Execute(connection, $"CREATE SCHEMA IF NOT EXISTS {DevicesSchema}");
        Execute(connection, $"CREATE TABLE {name} (device VARCHAR NOT NULL)");
        using var appender = connection.CreateAppender(DevicesSchema, name[(DevicesSchema.Length + 1)..]);
        foreach (var device in devices) appender.CreateRow().AppendValue(device).EndRow();
    }

    private static string ViewSqlOver(GrantedTable table, string? devicesTable)
    {
        var shape = table.Shape;
        if (table.Files.Count == 0)
        {
            // No file yet (a subscription before its first data): an empty view with the columns the restriction names.
            var empty = $"(SELECT CAST(NULL AS VARCHAR) AS {shape.DeviceColumn}, CAST(NULL AS TIMESTAMPTZ) AS {shape.TimeColumn}, CAST(NULL AS BIGINT) AS {shape.SequenceColumn}" +
                (shape.LatitudeColumn is null ? "" : $", CAST(NULL AS DOUBLE) AS {shape.LatitudeColumn}, CAST(NULL AS DOUBLE) AS {shape.LongitudeColumn}") + " WHERE false)";
            return $"CREATE VIEW {table.Name} AS SELECT * FROM {empty} WHERE {RowCondition(shape, table.Rows, withTime: true, devicesTable)}";
        }
        var inside = table.Files.Where(f => DayOf(f) is { } day && DayInside(day, table.Rows)).ToList();
        var edges = table.Files.Except(inside).ToList();
        var scans = new List<string>();
        if (inside.Count > 0) scans.Add(Scan(inside, RowCondition(shape, table.Rows, withTime: false, devicesTable)));
        if (edges.Count > 0) scans.Add(Scan(edges, RowCondition(shape, table.Rows, withTime: true, devicesTable)));
        return $"CREATE VIEW {table.Name} AS {string.Join(" UNION ALL ", scans)}";
    }

    private static string Scan(IEnumerable<string> files, string condition) =>
        $"SELECT * FROM read_parquet([{string.Join(", ", files.Select(Literal))}], hive_partitioning = true, hive_types = {{'date': DATE}})" +
        (condition.Length == 0 ? "" : $" WHERE {condition}");

    /// <summary>The day of a lake file's <c>date=YYYY-MM-DD</c> folder, the partition DuckDB reads as its <c>date</c> column; null without one.</summary>
    private static DateOnly? DayOf(string file) =>
        Path.GetFileName(Path.GetDirectoryName(file)) is { } folder && folder.StartsWith("date=", StringComparison.Ordinal)
        && DateOnly.TryParseExact(folder["date=".Length..], "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day) ? day : null;

    private static bool DayInside(DateOnly day, RowRestriction rows)
    {
        var start = new DateTimeOffset(day.ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);
        return start >= rows.From && (rows.Until is not { } until || start.AddDays(1) <= until);
    }

    /// <summary>The SQL condition that holds for exactly the rows of <paramref name="rows"/>, over a table of <paramref name="shape"/>.</summary>
    public static string RowCondition(TableShape shape, RowRestriction rows) => RowCondition(shape, rows, withTime: true, devicesTable: null);

    // Without the time: the other conditions only ("" when there are none). With a devices table, the devices are its rows.
    private static string RowCondition(TableShape shape, RowRestriction rows, bool withTime, string? devicesTable)
    {
        var conditions = new List<string>();
        if (withTime) conditions.Add($"{shape.TimeColumn} >= {Time(rows.From)}");
        if (withTime && rows.Until is { } until) conditions.Add($"{shape.TimeColumn} < {Time(until)}");
        if (rows.Box is { } box)
        {
            conditions.Add($"{shape.LatitudeColumn} BETWEEN {Number(box.South)} AND {Number(box.North)}");
            conditions.Add($"{shape.LongitudeColumn} BETWEEN {Number(box.West)} AND {Number(box.East)}");
        }
        if (devicesTable is not null)
            conditions.Add($"{shape.DeviceColumn} IN (SELECT device FROM {devicesTable})");
        else if (rows.Devices is { } devices)
            conditions.Add(devices.Count == 0 ? "false" : $"{shape.DeviceColumn} IN ({string.Join(", ", devices.Select(Literal))})");
        return string.Join(" AND ", conditions);
    }

    /// <summary>Refuses <paramref name="sql"/> with a reason unless it may run here; reads nothing. A pass is remembered against <paramref name="buyer"/>'s share.</summary>
    public void Validate(string sql, string buyer = "")
    {
        if (_validated?.Find(_scope, sql) is not null) return;
        SqlValidator.Validate(_connection, sql, _tables, _limits);
        _validated?.Validated(buyer, _scope, sql);
    }

    /// <summary>
    /// Validates and runs one SELECT, streaming its result to <paramref name="output"/> in <paramref name="format"/>.
    /// At most <paramref name="maxRows"/> rows (the grant's remaining quota) and the sandbox's caps are delivered; a
    /// result cut short says so. Throws <see cref="SandboxRefusedException"/> when refused, timed out, out of memory or
    /// failed (bad column, division error, …), and <see cref="OperationCanceledException"/> when the caller cancels.
    /// With <paramref name="epochLength"/>, the result's rows are counted per device and epoch as they are written
    /// (<see cref="QueryResult.Delivered"/>) when the query can carry the view's device and time along unseen
    /// (<see cref="CarriedColumns"/>).
    /// </summary>
    public Task<QueryResult> RunAsync(string sql, ResultFormat format, Stream output, long maxRows, long lakeCheckpoint, CancellationToken cancellation, TimeSpan? epochLength = null)
    {
        Validate(sql);
        return RunValidatedAsync(sql, format, output, maxRows, lakeCheckpoint, cancellation, epochLength);
    }

    // For a caller that has just validated (the API, which times validation apart) and for tests showing that the
    // locked-down DuckDB refuses on its own what the validator refuses first.
    internal async Task<QueryResult> RunValidatedAsync(string sql, ResultFormat format, Stream output, long maxRows, long lakeCheckpoint, CancellationToken cancellation, TimeSpan? epochLength = null)
    {
        var rowCap = Math.Min(Math.Max(0, maxRows), _limits.MaxResultRows);
        var byteCap = _limits.MaxResultBytes;

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        timeout.CancelAfter(_limits.Timeout);
        var carried = epochLength is not null && _granted.Count == 1 ? Carried(sql) : null;
        using var command = _connection.CreateCommand();
        command.CommandText = carried ?? sql;
        await using var interrupt = timeout.Token.Register(command.Cancel);

        var counted = new CountingStream(output);
        ResultWriter? writer = null;
        long rows = 0;
        var truncated = false;
        try
        {
            using var batches = command.ExecuteArrowStream();
            var shown = carried is null ? batches.Schema : WithoutLast(batches.Schema, CarriedColumns.Count);
            ResultWriter.CheckTypes(shown);
            writer = ResultWriter.For(format, counted);
            writer.Begin(shown);
            var delivered = epochLength is { } epoch && carried is not null ? DeliveredRows.Last(batches.Schema, epoch) : null;
            while (!truncated && await batches.ReadNextRecordBatchAsync(timeout.Token) is { } batch)
            {
                using (batch)
                {
                    // The shown batch borrows the first columns' arrays; the batch read owns and frees them.
                    var written = writer.Write(carried is null ? batch : new RecordBatch(shown, batch.Arrays.Take(shown.FieldsList.Count), batch.Length),
                        (int)Math.Min(batch.Length, rowCap - rows), byteCap);
                    delivered?.Count(batch, written);
                    rows += written;
                    truncated = written < batch.Length;
                }
            }
            writer.End();
            return new QueryResult(rows, counted.Written, truncated, lakeCheckpoint, shown.FieldsList.Select(f => f.Name).ToList(), delivered?.Shares());
        }
        catch (Exception e) when (e is DuckDBException or OperationCanceledException)
        {
            cancellation.ThrowIfCancellationRequested();
            throw Stopped(e, timeout.IsCancellationRequested);
        }
        finally
        {
            writer?.Dispose();
        }
    }

    /// <summary>The query carrying the only view's device and time along, if it qualifies and the rewrite passes the validator too.</summary>
    private string? Carried(string sql)
    {
        if (_validated?.Find(_scope, sql) is { CarriedKnown: true } known) return known.Carried;
        string? carried;
        try
        {
            carried = CarriedColumns.Rewrite(_connection, sql, _granted.Values.Single());
            if (carried is not null) SqlValidator.Validate(_connection, carried, _tables, _limits);
        }
        catch (Exception e) when (e is SandboxRefusedException or DuckDBException or System.Text.Json.JsonException)
        {
            carried = null; // the buyer's own query passed: it runs as written and is attributed as before
        }
        _validated?.Carried(_scope, sql, carried);
        return carried;
    }

    private static Schema WithoutLast(Schema schema, int count) =>
        new(schema.FieldsList.Take(schema.FieldsList.Count - count), schema.HasMetadata ? schema.Metadata : null);

    private SandboxRefusedException Stopped(Exception e, bool timedOut)
    {
        if (timedOut)
            return new SandboxRefusedException(SandboxReason.Timeout, $"The query ran longer than {_limits.Timeout.TotalSeconds:0.#} s and was stopped; filter earlier (time range, devices) or aggregate less.", e);
        if (e.Message.Contains("Out of Memory", StringComparison.OrdinalIgnoreCase))
            return new SandboxRefusedException(SandboxReason.OutOfMemory, $"The query needed more than {_limits.MemoryLimitMegabytes} MB and was stopped; filter earlier or aggregate before joining.", e);
        var kind = e.Message.IndexOf(" Error: ", StringComparison.Ordinal) is var end and > 0 ? e.Message[..(end + " Error".Length)] : "";
        return new SandboxRefusedException(SandboxReason.QueryFailed, QuotesOnlyTheQuery.Contains(kind)
            ? $"DuckDB could not run the query: {FirstLine(e.Message)}"
            : $"DuckDB could not run the query: {(kind.Length is > 0 and < 40 ? kind : "an error")} (its message is withheld: it can quote the value it failed on, of a row not paid for). Convert only values that fit (try_cast answers NULL for the others).", e);
    }

    /// <summary>
    /// The errors DuckDB raises while it binds the query, before it reads a row: their message quotes only the query
    /// and the tables' columns. Any other (a conversion, an input a function refuses, an overflow) can quote the value
    /// it failed on, so a query failing on purpose, a row at a time, read the slice unmetered from its refusals (issue 13).
    /// By the message's first words: the arrow stream's errors do not carry DuckDB's error type.
    /// </summary>
    private static readonly HashSet<string> QuotesOnlyTheQuery = new(StringComparer.Ordinal) { "Parser Error", "Syntax Error", "Binder Error", "Catalog Error", "Permission Error" };

    private static string FirstLine(string message) => message.Split('\n', 2)[0].Trim();

    /// <summary>
    /// Rows per device and epoch in one grant's slice: the shares an aggregate's charge is attributed by, when the
    /// result's rows cannot name the devices they came from (see <see cref="Attribution.SalesAttribution"/>). The count
    /// scans the whole slice, so it is bounded too: what is left of the query's time limit, <paramref name="timeLeft"/>.
    /// Past it, it is stopped and refused (<see cref="SandboxReason.Timeout"/>): a result that cannot be attributed is
    /// not charged, and a result not charged is not sent.
    /// </summary>
    public IReadOnlyList<Attribution.DeviceShare> CountShares(string table, TimeSpan epochLength, TimeSpan timeLeft)
    {
        // The slice is fixed for the sandbox's life (its files and rows are), so it is counted once however often it is asked.
        if (_shares.TryGetValue((table, epochLength), out var counted)) return counted;
        var shape = _granted.TryGetValue(table, out var granted) ? granted.Shape : throw new ArgumentException($"'{table}' is not a table of this sandbox.", nameof(table));
        if (timeLeft <= TimeSpan.Zero) throw SharesTimedOut(null);
        using var deadline = new CancellationTokenSource(timeLeft);
        List<Attribution.DeviceShare> shares;
        try
        {
            shares = CountShares(_connection, table, shape, epochLength, deadline.Token);
        }
        catch (Exception e) when (e is DuckDBException or OperationCanceledException && deadline.IsCancellationRequested)
        {
            throw SharesTimedOut(e);
        }
        // Interrupted as it ended, a count may be cut short without an error: past the limit it is never taken as whole.
        if (deadline.IsCancellationRequested) throw SharesTimedOut(null);
        return _shares[(table, epochLength)] = shares;
    }

    private SandboxRefusedException SharesTimedOut(Exception? e) => new(SandboxReason.Timeout,
        $"The query ran, but counting whose rows its result holds (the grant's whole slice, so its owners are paid) did not finish within the query's {_limits.Timeout.TotalSeconds:0.#} s; nothing was sent or charged. " +
        "Select the grant's rows one for one (no aggregate, join or DISTINCT; they are attributed as they are sent), or buy a narrower grant.", e);

    /// <summary>Rows per device and epoch of the view <paramref name="table"/> on <paramref name="connection"/> (the sandbox's, or an export's); <paramref name="interrupt"/> stops DuckDB.</summary>
    internal static List<Attribution.DeviceShare> CountShares(DuckDBConnection connection, string table, TableShape shape, TimeSpan epochLength, CancellationToken interrupt = default)
    {
        var seconds = ((long)epochLength.TotalSeconds) is var s and > 0 ? s.ToString(CultureInfo.InvariantCulture) : throw new ArgumentException("An epoch lasts at least a second.", nameof(epochLength));
        using var command = connection.CreateCommand();
        command.CommandText = $"""
            SELECT {shape.DeviceColumn}, CAST(floor(epoch({shape.TimeColumn}) / {seconds}) AS BIGINT) AS epoch, count(*)
            FROM {table} GROUP BY ALL ORDER BY ALL
            """;
        using var stop = interrupt.Register(command.Cancel);
        using var reader = command.ExecuteReader();
        var shares = new List<Attribution.DeviceShare>();
        while (reader.Read()) shares.Add(new Attribution.DeviceShare(reader.GetString(0), reader.GetInt64(1), reader.GetInt64(2)));
        return shares;
    }

    /// <summary>The rows of one grant's slice.</summary>
    public long CountRows(string table) =>
        _granted.ContainsKey(table) ? CountRows(_connection, table) : throw new ArgumentException($"'{table}' is not a table of this sandbox.", nameof(table));

    internal static long CountRows(DuckDBConnection connection, string table)
    {
        using var command = connection.CreateCommand();
        command.CommandText = $"SELECT count(*) FROM {table}";
        return Convert.ToInt64(command.ExecuteScalar(), CultureInfo.InvariantCulture);
    }

    /// <summary>Bytes DuckDB holds in this sandbox's buffers now (for checking that a stopped query let go of its memory).</summary>
    public long MemoryInUse()
    {
        using var command = _connection.CreateCommand();
        command.CommandText = "SELECT CAST(coalesce(sum(memory_usage_bytes), 0) AS BIGINT) FROM duckdb_memory()";
        return Convert.ToInt64(command.ExecuteScalar(), CultureInfo.InvariantCulture);
    }

    public void Dispose() => _connection.Dispose();

    internal static void Execute(DuckDBConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    internal static string Literal(string text) => "'" + text.Replace("'", "''", StringComparison.Ordinal) + "'";

    private static string Time(DateTimeOffset time) => $"TIMESTAMPTZ '{time.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss.ffffff", CultureInfo.InvariantCulture)}+00'";

    private static string Number(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}
