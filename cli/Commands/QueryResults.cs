using System.Collections;
using System.Data.Common;
using System.Globalization;
using System.Numerics;
using System.Text.Json;

namespace Pipeline.Cli.Commands;

/// <summary>The rows a query returned (at most the limit), and whether more matched.</summary>
public sealed record QueryResult(IReadOnlyList<string> Columns, IReadOnlyList<object?[]> Rows, bool Truncated)
{
    /// <summary>Reads up to <paramref name="limit"/> rows, and one more to learn whether the result was cut.</summary>
    public static QueryResult Read(DbDataReader reader, int limit)
    {
        var columns = Enumerable.Range(0, reader.FieldCount).Select(reader.GetName).ToList();
        // DuckDB.NET reads a TIMESTAMPTZ as a DateTime of no kind; its instant is UTC, which the output says.
        var utc = Enumerable.Range(0, reader.FieldCount).Select(i => reader.GetDataTypeName(i) == "TimestampTz").ToArray();
        var rows = new List<object?[]>();
        while (reader.Read())
        {
            if (rows.Count == limit) return new QueryResult(columns, rows, Truncated: true);
            var row = new object?[columns.Count];
            for (var i = 0; i < row.Length; i++)
            {
                row[i] = reader.IsDBNull(i) ? null : reader.GetValue(i);
                if (utc[i] && row[i] is DateTime { Kind: DateTimeKind.Unspecified } time) row[i] = DateTime.SpecifyKind(time, DateTimeKind.Utc);
            }
            rows.Add(row);
        }
        return new QueryResult(columns, rows, Truncated: false);
    }
}

/// <summary>
/// A query result as people read it (a table that fits the terminal, or one block per row when it cannot) and as
/// programs read it (CSV, JSON): dates as yyyy-MM-dd, times as ISO 8601 in UTC, numbers with a dot, maps and lists whole.
/// </summary>
public static class QueryResults
{
    private const string Gap = " | ";
    private const int NarrowestColumn = 10;

    /// <summary>One cell as text: what the table and CSV show.</summary>
    public static string Text(object? value) => value switch
    {
        null => "",
        string text => text,
        DateTimeOffset time => Iso(time.UtcDateTime),
        // The lake's times are TIMESTAMPTZ read in a UTC session; a plain TIMESTAMP has no zone and gets none.
        DateTime time => time.Kind == DateTimeKind.Unspecified ? time.ToString("yyyy-MM-ddTHH:mm:ss.FFFFFF", CultureInfo.InvariantCulture) : Iso(time.ToUniversalTime()),
        DateOnly date => date.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
        TimeOnly time => time.ToString("HH:mm:ss.FFFFFF", CultureInfo.InvariantCulture),
        bool flag => flag ? "true" : "false",
        double number => number.ToString("R", CultureInfo.InvariantCulture),
        float number => number.ToString("R", CultureInfo.InvariantCulture),
        byte[] bytes => "0x" + Convert.ToHexStringLower(bytes),
        IDictionary map => string.Join(", ", map.Keys.Cast<object>().Select(k => $"{Text(k)}={Text(map[k])}")),
        IEnumerable list => "[" + string.Join(", ", list.Cast<object?>().Select(Text)) + "]",
        IFormattable formattable => formattable.ToString(null, CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };

    private static string Iso(DateTime utc) => utc.ToString("yyyy-MM-ddTHH:mm:ss.FFFFFFZ", CultureInfo.InvariantCulture);

    /// <summary>
    /// The result as lines no wider than <paramref name="width"/> (null: as wide as the values): a table whose widest
    /// columns are cut short with … when it does not fit, or, when even that would leave columns too narrow to read,
    /// one block per row with a line per column.
    /// </summary>
    public static IEnumerable<string> Table(QueryResult result, int? width)
    {
        var cells = result.Rows.Select(row => row.Select(v => OneLine(Text(v))).ToArray()).ToList();
        var widths = result.Columns.Select((name, i) => cells.Select(c => c[i].Length).Append(name.Length).Max()).ToArray();
        if (width is { } limit && !Shrink(widths, result.Columns, limit)) return Records(result.Columns, cells, limit);
        var numeric = result.Columns.Select((_, i) => result.Rows.All(r => r[i] is null or sbyte or byte or short or ushort or int or uint or long or ulong or float or double or decimal or BigInteger)).ToArray();
        var lines = new List<string>
        {
            string.Join(Gap, result.Columns.Select((name, i) => Fit(name, widths[i], rightAligned: false))).TrimEnd(),
            string.Join("-+-", widths.Select(w => new string('-', w))),
        };
        lines.AddRange(cells.Select(row => string.Join(Gap, row.Select((cell, i) => Fit(cell, widths[i], numeric[i]))).TrimEnd()));
        return lines;
    }

    /// <summary>Narrows the widest columns, down to their header or a readable minimum, until the table fits.</summary>
    private static bool Shrink(int[] widths, IReadOnlyList<string> columns, int limit)
    {
        var floors = widths.Select((w, i) => Math.Min(w, Math.Max(columns[i].Length, NarrowestColumn))).ToArray();
        var total = widths.Sum() + Gap.Length * (widths.Length - 1);
        while (total > limit)
        {
            var widest = -1;
            for (var i = 0; i < widths.Length; i++)
                if (widths[i] > floors[i] && (widest < 0 || widths[i] > widths[widest])) widest = i;
            if (widest < 0) return false;
            widths[widest]--;
            total--;
        }
        return true;
    }

    /// <summary>One block per row, "column  value", values wrapped to the width: for results with more columns than fit.</summary>
    private static List<string> Records(IReadOnlyList<string> columns, List<string[]> cells, int width)
    {
        var nameWidth = Math.Min(columns.Max(c => c.Length), Math.Max(NarrowestColumn, width / 3));
        var valueWidth = Math.Max(NarrowestColumn, width - nameWidth - 2);
        var lines = new List<string>();
        for (var row = 0; row < cells.Count; row++)
        {
            var title = $"-[ row {row + 1} ]";
            lines.Add(title + new string('-', Math.Max(0, Math.Min(width, nameWidth + 2 + valueWidth) - title.Length)));
            for (var i = 0; i < columns.Count; i++)
            {
                var value = cells[row][i];
                var name = Fit(columns[i], nameWidth, rightAligned: false);
                if (value.Length == 0) lines.Add(name.TrimEnd());
                for (var start = 0; start < value.Length; start += valueWidth)
                    lines.Add((start == 0 ? name : new string(' ', nameWidth)) + "  " + value.Substring(start, Math.Min(valueWidth, value.Length - start)));
            }
        }
        return lines;
    }

    private static string Fit(string text, int width, bool rightAligned) =>
        text.Length > width ? text[..(width - 1)] + "…" : rightAligned ? text.PadLeft(width) : text.PadRight(width);

    private static string OneLine(string text) => text.Contains('\n') || text.Contains('\r') ? text.ReplaceLineEndings(" ") : text;

    /// <summary>RFC 4180: a header line, then a line per row; fields with a comma, quote or line break are quoted.</summary>
    public static void WriteCsv(QueryResult result, TextWriter output)
    {
        output.Write(string.Join(',', result.Columns.Select(Quote)) + "\n");
        foreach (var row in result.Rows) output.Write(string.Join(',', row.Select(v => Quote(Text(v)))) + "\n");
    }

    private static string Quote(string field) =>
        field.AsSpan().IndexOfAny(",\"\r\n") >= 0 ? "\"" + field.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : field;

    /// <summary>A JSON array with one object per row (one row per line): numbers stay numbers, maps objects, lists arrays.</summary>
    public static void WriteJson(QueryResult result, Stream output)
    {
        output.Write("["u8);
        for (var r = 0; r < result.Rows.Count; r++)
        {
            output.Write(r == 0 ? "\n"u8 : ",\n"u8);
            using var writer = new Utf8JsonWriter(output);
            writer.WriteStartObject();
            for (var i = 0; i < result.Columns.Count; i++)
            {
                writer.WritePropertyName(result.Columns[i]);
                WriteValue(writer, result.Rows[r][i]);
            }
            writer.WriteEndObject();
        }
        output.Write(result.Rows.Count == 0 ? "]\n"u8 : "\n]\n"u8);
    }

    private static void WriteValue(Utf8JsonWriter writer, object? value)
    {
        switch (value)
        {
            case null: writer.WriteNullValue(); break;
            case bool flag: writer.WriteBooleanValue(flag); break;
            case double number when double.IsFinite(number): writer.WriteNumberValue(number); break;
            case float number when float.IsFinite(number): writer.WriteNumberValue(number); break;
            case sbyte or byte or short or ushort or int or uint or long: writer.WriteNumberValue(Convert.ToInt64(value, CultureInfo.InvariantCulture)); break;
            case ulong number: writer.WriteNumberValue(number); break;
            case decimal number: writer.WriteNumberValue(number); break;
            case BigInteger number: writer.WriteRawValue(number.ToString(CultureInfo.InvariantCulture)); break;
            case IDictionary map:
                writer.WriteStartObject();
                foreach (var key in map.Keys) { writer.WritePropertyName(Text(key)); WriteValue(writer, map[key]); }
                writer.WriteEndObject();
                break;
            case IEnumerable list and not string and not byte[]:
                writer.WriteStartArray();
                foreach (var item in list) WriteValue(writer, item);
                writer.WriteEndArray();
                break;
            default: writer.WriteStringValue(Text(value)); break;
        }
    }
}
