using System.Text.RegularExpressions;

namespace Pipeline.Tests.Support;

/// <summary>
/// A shell example of the README that its tests run as written: a ```bash block right after a line
/// <c>&lt;!-- readme-test --&gt;</c> (or <c>&lt;!-- readme-test: eventually --&gt;</c> for one that may be run again until
/// its output appears). Lines <c># → text</c> in the block are output it must print, <c>…</c> standing for anything.
/// </summary>
public sealed partial record ReadmeExample(int Line, string Script, IReadOnlyList<string> ExpectedOutput, bool Eventually)
{
    public const string Marker = "<!-- readme-test";
    private const string ExpectedPrefix = "# → ";

    /// <summary>The marked examples of the README, in order.</summary>
    public static IReadOnlyList<ReadmeExample> All(string readme)
    {
        var lines = readme.ReplaceLineEndings("\n").Split('\n');
        var examples = new List<ReadmeExample>();
        for (var i = 0; i < lines.Length; i++)
        {
            if (!lines[i].StartsWith(Marker, StringComparison.Ordinal)) continue;
            var eventually = lines[i].Contains("eventually", StringComparison.Ordinal);
            var fence = i + 1;
            while (fence < lines.Length && lines[fence].Trim().Length == 0) fence++;
            if (fence >= lines.Length || lines[fence].Trim() != "```bash")
                throw new FormatException($"README line {i + 1}: {Marker} must be followed by a ```bash block.");
            var end = Array.FindIndex(lines, fence + 1, l => l.Trim() == "```");
            if (end < 0) throw new FormatException($"README line {fence + 1}: the block never ends.");
            var body = lines[(fence + 1)..end];
            examples.Add(new ReadmeExample(fence + 2, string.Join('\n', body),
                body.Where(l => l.StartsWith(ExpectedPrefix, StringComparison.Ordinal)).Select(l => l[ExpectedPrefix.Length..]).ToList(), eventually));
            i = end;
        }
        return examples;
    }

    /// <summary>The expected lines that no line of <paramref name="output"/> matches (whole line, … for anything).</summary>
    public IReadOnlyList<string> Missing(string output)
    {
        var printed = output.ReplaceLineEndings("\n").Split('\n').Select(l => l.TrimEnd()).ToList();
        return ExpectedOutput.Where(expected =>
        {
            var pattern = new Regex("^" + string.Join(".*", expected.Split('…').Select(Regex.Escape)) + "$", RegexOptions.CultureInvariant);
            return !printed.Any(pattern.IsMatch);
        }).ToList();
    }
}
