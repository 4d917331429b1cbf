namespace Pipeline.Marketplace.Sandbox;

/// <summary>
/// Statements that passed the validator lately, by their exact text and the views (names, shapes, rows) and limits they
/// were checked against, with the rewrite that carries the view's device and time along (<see cref="CarriedColumns"/>)
/// once it is known. Both are functions of the text, the view names and shapes, and the limits alone (DuckDB's parser
/// decides, not the data), so a buyer repeating a query skips parsing it twice; a new checkpoint's sandbox finds them
/// too. Refusals are not kept. Kept for <see cref="Lifetime"/>, at most <see cref="Capacity"/> at once (a statement is
/// at most 16 KiB: some 16 MB at worst).
/// </summary>
public sealed class ValidatedStatements(TimeProvider clock)
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(5);
    public const int Capacity = 256;

    /// <summary>What was learnt about one statement: it passed, and the rewrite carrying the view's columns (null: it does not qualify) once asked.</summary>
    public sealed record Statement(DateTimeOffset ValidatedAt, bool CarriedKnown = false, string? Carried = null);

    private readonly Dictionary<(string Scope, string Sql), Statement> _statements = [];
    private readonly Lock _gate = new();

    public Statement? Find(string scope, string sql)
    {
        lock (_gate)
            return _statements.TryGetValue((scope, sql), out var statement) && clock.GetUtcNow() - statement.ValidatedAt < Lifetime ? statement : null;
    }

    public void Validated(string scope, string sql)
    {
        lock (_gate)
        {
            if (_statements.Count >= Capacity) _statements.Clear();
            _statements[(scope, sql)] = new Statement(clock.GetUtcNow());
        }
    }

    public void Carried(string scope, string sql, string? carried)
    {
        lock (_gate)
            if (_statements.TryGetValue((scope, sql), out var statement))
                _statements[(scope, sql)] = statement with { CarriedKnown = true, Carried = carried };
    }
}
