using System.Globalization;
using System.Text;

namespace Pipeline.Simulator.Replay;

/// <summary>
/// Plain-text field parsing shared by the CSV and whitespace readers. Errors name the file, line and column so that a
/// broken recording is found without a debugger.
/// </summary>
internal static class RecordedText
{
    /// <summary>Splits one delimited line; fields may be double-quoted ("" inside quotes is a quote). No multi-line fields.</summary>
    public static string[] SplitFields(string line, char separator)
    {
        var fields = new List<string>();
        var field = new StringBuilder();
        var quoted = false;
        for (var i = 0; i < line.Length; i++)
        {
            var c = line[i];
            if (quoted)
            {
                if (c != '"') field.Append(c);
                else if (i + 1 < line.Length && line[i + 1] == '"')
                {
                    field.Append('"');
                    i++;
                }
                else quoted = false;
            }
            else if (c == '"') quoted = true;
            else if (c == separator)
            {
                fields.Add(field.ToString());
                field.Clear();
            }
            else field.Append(c);
        }
        fields.Add(field.ToString());
        return [.. fields];
    }

    /// <summary>
    /// The rows of a delimited file below its header, each with its line number and the fields of the named columns in
    /// the order named. Empty lines are skipped.
    /// </summary>
    public static IEnumerable<CsvRow> CsvRows(string path, string fileName, params string[] columns)
    {
        int[]? positions = null;
        long lineNumber = 0;
        foreach (var line in File.ReadLines(path, Encoding.UTF8))
        {
            lineNumber++;
            if (line.Length == 0) continue;
            var fields = SplitFields(line, ',');
            if (positions is null) positions = ColumnPositions(fields, fileName, columns);
            else yield return new CsvRow(fields, positions, lineNumber);
        }
    }

    /// <summary>The position of each named column in a header; a missing column is a format error, not a silent gap.</summary>
    public static int[] ColumnPositions(string[] header, string fileName, params string[] names)
    {
        var positions = new int[names.Length];
        for (var i = 0; i < names.Length; i++)
        {
            positions[i] = Array.IndexOf(header, names[i]);
            if (positions[i] < 0)
                throw new InvalidDataException($"{fileName}: the header has no column '{names[i]}' (found: {string.Join(", ", header)}).");
        }
        return positions;
    }

    public static double Number(string text, string fileName, long lineNumber, string column) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && double.IsFinite(value)
            ? value
            : throw new InvalidDataException($"{fileName} line {lineNumber}: {column} '{text}' is not a number.");

    public static int Integer(string text, string fileName, long lineNumber, string column) =>
        int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value)
            ? value
            : throw new InvalidDataException($"{fileName} line {lineNumber}: {column} '{text}' is not a whole number.");

    /// <summary>An ISO-8601 instant; one without a zone is taken as UTC because every format read here writes UTC.</summary>
    public static DateTimeOffset Utc(string text, string fileName, long lineNumber, string column) =>
        DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var at)
            ? at
            : throw new InvalidDataException($"{fileName} line {lineNumber}: {column} '{text}' is not an ISO-8601 time.");

    /// <summary>Metadata values are text; written invariant and round-trippable.</summary>
    public static string Invariant(double value) => value.ToString(CultureInfo.InvariantCulture);
}

/// <summary>One row of a CSV file; <c>row[i]</c> is the field of the i-th column asked for.</summary>
internal readonly record struct CsvRow(string[] Fields, int[] Positions, long Line)
{
    public string this[int column] => Fields[Positions[column]];
}
