using System.Text.Json.Nodes;
using DuckDB.NET.Data;

namespace Pipeline.Marketplace.Sandbox;

/// <summary>
/// Lets a result that does not name its rows' devices (<c>SELECT device_time, speed_kmh … WHERE device = …</c>) be
/// attributed to the devices it delivered rather than to the whole slice. A query whose rows are the view's rows one
/// for one runs with the view's device and time columns appended to its select list; the writer leaves those two out.
/// One for one means a single SELECT over the granted view itself (no join, WITH or set operation at the top level)
/// without DISTINCT, GROUP BY, HAVING or an aggregate outside a subquery. The rewrite edits DuckDB's own parse tree
/// (<c>json_serialize_sql</c> → <c>json_deserialize_sql</c>), never the text, and the result is validated again.
/// </summary>
internal static class CarriedColumns
{
    /// <summary>How many columns a rewritten query appends: the view's device column, then its time column.</summary>
    public const int Count = 2;

    /// <summary>The query with the view's device and time appended to its select list, or null when it does not qualify.</summary>
    public static string? Rewrite(DuckDBConnection connection, string sql, GrantedTable view)
    {
        if (JsonNode.Parse(Scalar(connection, $"SELECT json_serialize_sql({SqlSandbox.Literal(sql)})")) is not JsonObject tree
            || tree["error"]?.GetValue<bool>() != false
            || tree["statements"] is not JsonArray { Count: 1 } statements
            || statements[0]?["node"] is not JsonObject node
            || Qualifier(node, view.Name) is not { } qualifier
            || node["select_list"] is not JsonArray select)
            return null;
        select.Add(ColumnRef(qualifier, view.Shape.DeviceColumn));
        select.Add(ColumnRef(qualifier, view.Shape.TimeColumn));
        return Scalar(connection, $"SELECT json_deserialize_sql({SqlSandbox.Literal(tree.ToJsonString())})");
    }

    /// <summary>The name the view goes by in <paramref name="node"/> (its alias, or its name) when the node's rows are the view's one for one.</summary>
    private static string? Qualifier(JsonObject node, string view)
    {
        if (Text(node["type"]) != "SELECT_NODE"
            || node["cte_map"]?["map"] is not JsonArray { Count: 0 }
            || node["from_table"] is not JsonObject from
            || Text(from["type"]) != "BASE_TABLE"
            || !string.Equals(Text(from["table_name"]), view, StringComparison.OrdinalIgnoreCase)
            || Text(from["schema_name"]) is not (null or "") || Text(from["catalog_name"]) is not (null or "")
            || node["group_expressions"] is not JsonArray { Count: 0 }
            || node["group_sets"] is JsonArray { Count: > 0 }
            || Text(node["aggregate_handling"]) != "STANDARD_HANDLING"
            || node["having"] is not null
            || node["modifiers"] is not JsonArray modifiers
            || modifiers.Any(m => Text(m?["type"]) == "DISTINCT_MODIFIER")
            || Aggregates(node))
            return null;
        return Text(from["alias"]) is { Length: > 0 } alias ? alias : Text(from["table_name"]);
    }

    // An aggregate anywhere in the node folds rows together, unless it is inside a subquery (which is a query of its own).
    private static bool Aggregates(JsonNode? node) => node switch
    {
        JsonArray items => items.Any(Aggregates),
        JsonObject o when Text(o["class"]) == "SUBQUERY" => false,
        JsonObject o when Text(o["class"]) == "FUNCTION" && SandboxFunctions.Aggregates.Contains(Text(o["function_name"])?.ToLowerInvariant() ?? "") => true,
        JsonObject o => o.Any(p => Aggregates(p.Value)),
        _ => false,
    };

    private static JsonObject ColumnRef(string qualifier, string column) => new()
    {
        ["class"] = "COLUMN_REF",
        ["type"] = "COLUMN_REF",
        ["alias"] = "",
        ["query_location"] = ulong.MaxValue, // no place in the buyer's text
        ["column_names"] = new JsonArray(qualifier, column),
    };

    private static string? Text(JsonNode? node) => node is JsonValue value && value.TryGetValue<string>(out var text) ? text : null;

    private static string Scalar(DuckDBConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        return (string)command.ExecuteScalar()!;
    }
}
