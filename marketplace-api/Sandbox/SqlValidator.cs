using System.Text;
using System.Text.Json;
using DuckDB.NET.Data;

namespace Pipeline.Marketplace.Sandbox;

/// <summary>
/// Decides whether a buyer's SQL may run, from DuckDB's own parse tree (<c>json_serialize_sql</c>), never from the text:
/// exactly one SELECT whose relations are the grant's views (or its own CTEs and subqueries), no table functions, and
/// only allowlisted functions. Every node kind is checked against a list of known harmless ones, so syntax a later
/// DuckDB adds is refused until it is understood. Throws <see cref="SandboxRefusedException"/>.
/// </summary>
public static class SqlValidator
{
    // Query, table and modifier nodes that may appear (objects with a string "type" and no "class").
    private static readonly HashSet<string> AllowedNodes = new(StringComparer.Ordinal)
    {
        "SELECT_NODE", "SET_OPERATION_NODE", "BASE_TABLE", "JOIN", "SUBQUERY", "EMPTY", "EXPRESSION_LIST",
        "ORDER_MODIFIER", "LIMIT_MODIFIER", "LIMIT_PERCENT_MODIFIER", "DISTINCT_MODIFIER", "ORDER_DEFAULT", "ASCENDING", "DESCENDING",
    };

    // Expression classes that compute on values; functions are checked by name on top.
    private static readonly HashSet<string> AllowedExpressions = new(StringComparer.Ordinal)
    {
        "COLUMN_REF", "CONSTANT", "FUNCTION", "WINDOW", "COMPARISON", "CONJUNCTION", "OPERATOR", "CASE", "CAST", "BETWEEN", "STAR",
        "SUBQUERY", "LAMBDA", "LAMBDA_REF", "COLLATE", "POSITIONAL_REFERENCE",
    };

    /// <summary>Refuses <paramref name="sql"/> unless it may run over <paramref name="tables"/> (view names, lowercase).</summary>
    public static void Validate(DuckDBConnection connection, string sql, IReadOnlySet<string> tables, SandboxLimits limits)
    {
        if (string.IsNullOrWhiteSpace(sql))
            throw new SandboxRefusedException(SandboxReason.EmptyStatement, "The query is empty: send one SELECT statement over your grants' tables.");
        if (Encoding.UTF8.GetByteCount(sql) > limits.MaxSqlBytes)
            throw new SandboxRefusedException(SandboxReason.SqlTooLong, $"The query is longer than {limits.MaxSqlBytes} bytes; shorten it (aggregate in SQL rather than listing values).");
        if (!IsText(sql))
            throw new SandboxRefusedException(SandboxReason.BadEncoding, "The query holds a NUL character or half a surrogate pair; send plain UTF-8 text.");

        using var document = Parse(connection, sql, limits);
        var root = document.RootElement;
        if (root.GetProperty("error").GetBoolean())
        {
            var message = root.TryGetProperty("error_message", out var m) ? m.GetString() ?? "" : "";
            throw message.Contains("Only SELECT", StringComparison.Ordinal)
                ? new SandboxRefusedException(SandboxReason.NotSelect, "Only one SELECT statement may run (no COPY, SET, PRAGMA, CALL, PIVOT, ATTACH, INSTALL, CREATE, INSERT, DROP, …); read your tables with SELECT.")
                : new SandboxRefusedException(SandboxReason.SyntaxError, $"DuckDB cannot parse the query: {message}");
        }
        var statements = root.GetProperty("statements");
        if (statements.GetArrayLength() != 1)
            throw new SandboxRefusedException(SandboxReason.MultipleStatements, $"The query holds {statements.GetArrayLength()} statements; send exactly one SELECT.");

        var cost = new Cost(limits);
        Check(statements[0], tables, new HashSet<string>(StringComparer.OrdinalIgnoreCase), cost);
    }

    /// <summary>What one query adds up to across its whole tree.</summary>
    private sealed class Cost(SandboxLimits limits)
    {
        private int _concatenated;

        public void Literal(JsonElement constant)
        {
            if (constant.TryGetProperty("value", out var value) && value.TryGetProperty("value", out var text)
                && text.ValueKind == JsonValueKind.String && text.GetString()!.Length > limits.MaxStringLiteral)
                throw new SandboxRefusedException(SandboxReason.SqlTooLong, $"A string literal is longer than {limits.MaxStringLiteral} characters; shorten it.");
        }

        public void Concatenation(JsonElement function)
        {
            _concatenated += function.GetProperty("children").GetArrayLength();
            if (_concatenated > limits.MaxConcatenated)
                throw new SandboxRefusedException(SandboxReason.SqlTooComplex, $"The query concatenates more than {limits.MaxConcatenated} values; build long strings in your own code from the rows.");
        }
    }

    private static bool IsText(string sql)
    {
        for (var i = 0; i < sql.Length; i++)
        {
            if (sql[i] == '\0') return false;
            if (char.IsHighSurrogate(sql[i]) && i + 1 < sql.Length && char.IsLowSurrogate(sql[i + 1])) i++;
            else if (char.IsSurrogate(sql[i])) return false;
        }
        return true;
    }

    private static JsonDocument Parse(DuckDBConnection connection, string sql, SandboxLimits limits)
    {
        using var command = connection.CreateCommand();
        // A literal, not a parameter: the function wants a constant. A standard string has one escape (''), and NUL was refused.
        command.CommandText = $"SELECT json_serialize_sql({SqlSandbox.Literal(sql)})";
        var json = (string)command.ExecuteScalar()!;
        try
        {
            return JsonDocument.Parse(json, new JsonDocumentOptions { MaxDepth = limits.MaxParseDepth });
        }
        catch (JsonException)
        {
            throw new SandboxRefusedException(SandboxReason.SqlTooComplex, "The query is nested too deeply; flatten it (fewer nested subqueries or parentheses).");
        }
    }

    private static void Check(JsonElement element, IReadOnlySet<string> tables, HashSet<string> ctes, Cost cost)
    {
        if (element.ValueKind == JsonValueKind.Array)
        {
            foreach (var item in element.EnumerateArray()) Check(item, tables, ctes, cost);
            return;
        }
        if (element.ValueKind != JsonValueKind.Object) return;

        // A WITH clause's names are tables inside the node that declares them (its own queries included), not outside:
        // a name out of scope would reach DuckDB's catalog (pg_catalog's views hold view definitions).
        if (element.TryGetProperty("cte_map", out var cteMap) && cteMap.GetProperty("map") is { ValueKind: JsonValueKind.Array } map && map.GetArrayLength() > 0)
        {
            ctes = new HashSet<string>(ctes, StringComparer.OrdinalIgnoreCase);
            foreach (var entry in map.EnumerateArray())
            {
                var name = entry.GetProperty("key").GetString()!;
                if (tables.Contains(name.ToLowerInvariant()))
                    throw new SandboxRefusedException(SandboxReason.ShadowsGrant, $"The WITH clause names a query '{Printable(name)}' like one of your tables; give it another name.");
                ctes.Add(name);
            }
        }

        if (element.TryGetProperty("class", out var expressionClass))
            CheckExpression(element, expressionClass.GetString()!, cost);
        else if (element.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String)
            CheckNode(element, type.GetString()!, tables, ctes);

        foreach (var property in element.EnumerateObject()) Check(property.Value, tables, ctes, cost);
    }

    private static void CheckExpression(JsonElement expression, string expressionClass, Cost cost)
    {
        if (expressionClass == "CONSTANT") cost.Literal(expression);
        if (expressionClass == "PARAMETER")
            throw new SandboxRefusedException(SandboxReason.UnsupportedSyntax, "Parameters ($1, ?) are not supported; write the values into the query.");
        if (!AllowedExpressions.Contains(expressionClass))
            throw new SandboxRefusedException(SandboxReason.UnsupportedSyntax, $"Expressions of kind {expressionClass} are not allowed in the sandbox; rewrite the query without them.");
        if (expressionClass is not ("FUNCTION" or "WINDOW")) return;

        var name = expression.GetProperty("function_name").GetString()!.ToLowerInvariant();
        var schema = expression.TryGetProperty("schema", out var s) ? s.GetString() : "";
        var catalog = expression.TryGetProperty("catalog", out var c) ? c.GetString() : "";
        if (!SandboxFunctions.Allowed.Contains(name) || schema is not ("" or "main") || catalog is not "")
            throw new SandboxRefusedException(SandboxReason.FunctionNotAllowed, $"The function '{Printable(name)}' is not allowed in the sandbox; use the documented scalar, aggregate and window functions over your tables.");
        if (SandboxFunctions.Concatenating.Contains(name)) cost.Concatenation(expression);
        var arguments = expression.TryGetProperty("children", out var children) ? children.GetArrayLength() : 0;
        if ((SandboxFunctions.MaxArguments.TryGetValue(name, out var most) && arguments > most)
            || (SandboxFunctions.Quantiles.Contains(name) && arguments > 1 && !IsOneValue(children[1])))
            throw new SandboxRefusedException(SandboxReason.FunctionNotAllowed,
                $"'{name}' is allowed in its one-value form only ({(SandboxFunctions.Quantiles.Contains(name) ? "one constant fraction" : $"at most {most} argument(s)")}): a list of values is many rows charged as one. Select the rows instead.");
    }

    /// <summary>A constant that is not a list: a quantile's fraction.</summary>
    private static bool IsOneValue(JsonElement argument) =>
        argument.GetProperty("class").GetString() == "CONSTANT"
        && argument.GetProperty("value").GetProperty("type").GetProperty("id").GetString() is not ("LIST" or "ARRAY");

    private static void CheckNode(JsonElement node, string type, IReadOnlySet<string> tables, HashSet<string> ctes)
    {
        switch (type)
        {
            case "TABLE_FUNCTION":
                var function = node.GetProperty("function").TryGetProperty("function_name", out var f) ? f.GetString() : "?";
                throw new SandboxRefusedException(SandboxReason.TableFunction, $"Table functions such as '{Printable(function ?? "?")}' are not allowed; read only your tables ({string.Join(", ", tables.Order())}).");
            case "SHOW_REF":
                throw new SandboxRefusedException(SandboxReason.NotSelect, "DESCRIBE, SHOW and SUMMARIZE are not available; the catalog describes your tables' columns.");
            case "PIVOT":
                throw new SandboxRefusedException(SandboxReason.UnsupportedSyntax, "PIVOT and UNPIVOT are not available; aggregate with GROUP BY and FILTER instead.");
            case "RECURSIVE_CTE_NODE":
                throw new SandboxRefusedException(SandboxReason.RecursiveQuery, "Recursive queries (WITH RECURSIVE) are not allowed; they can run without end.");
            case "BASE_TABLE":
                CheckTable(node, tables, ctes);
                return;
        }
        if (type.EndsWith("_TYPE_INFO", StringComparison.Ordinal) || AllowedNodes.Contains(type)) return;
        throw new SandboxRefusedException(SandboxReason.UnsupportedSyntax, $"Query elements of kind {type} are not allowed in the sandbox; rewrite the query without them.");
    }

    private static void CheckTable(JsonElement node, IReadOnlySet<string> tables, HashSet<string> ctes)
    {
        var name = node.GetProperty("table_name").GetString()!;
        var qualified = node.GetProperty("schema_name").GetString() is not "" || node.GetProperty("catalog_name").GetString() is not "";
        if (node.TryGetProperty("at_clause", out var at) && at.ValueKind != JsonValueKind.Null)
            throw new SandboxRefusedException(SandboxReason.UnsupportedSyntax, "AT (time travel) is not available here; ask the API for an as_of checkpoint instead.");
        // Ordinal on ASCII: a name spelled with look-alike letters (Cyrillic а, Greek ο) is another name and is refused.
        if (qualified || !(tables.Contains(name.ToLowerInvariant()) || ctes.Contains(name)) || !name.All(char.IsAscii))
            throw new SandboxRefusedException(SandboxReason.UnknownTable, $"'{Printable(name)}' is not one of your tables; you may read {string.Join(", ", tables.Order())} (unqualified names).");
    }

    // A name echoed in a message: bounded, control characters shown as escapes.
    private static string Printable(string text)
    {
        var shown = text.Length > 80 ? text[..80] + "…" : text;
        return string.Concat(shown.Select(c => char.IsControl(c) ? $"\\u{(int)c:x4}" : c.ToString()));
    }
}
