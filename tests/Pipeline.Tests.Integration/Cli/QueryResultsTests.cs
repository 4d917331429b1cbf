using System.Text;
using System.Text.Json;
using Pipeline.Cli.Commands;

namespace Pipeline.Tests.Integration.Cli;

/// <summary>`depin lake query` output: readable in a terminal of any width, exact when piped as CSV or JSON (issue 11).</summary>
public sealed class QueryResultsTests
{
    private static readonly DateTimeOffset Time = new(2026, 12, 5, 14, 3, 11, 250, TimeSpan.Zero);

    /// <summary>A row of the vehicle_signals view: 30 columns, far wider than a terminal.</summary>
    private static QueryResult WideRows(int rows)
    {
        var columns = new List<string> { "device", "reading_id", "seq", "device_time", "date" };
        columns.AddRange(Enumerable.Range(0, 25).Select(i => $"signal_number_{i}_kmh"));
        return new QueryResult(columns, Enumerable.Range(0, rows).Select(r => new object?[] { "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266", "0x" + new string('a', 64), (long)r, Time, new DateOnly(2026, 12, 5) }
            .Concat(Enumerable.Range(0, 25).Select(i => (object?)(i * 1.5))).ToArray()).ToList(), Truncated: false);
    }

    [Theory]
    [InlineData(80)]
    [InlineData(120)]
    [InlineData(200)]
    public void WideResult_InATerminal_FitsItsWidth_AndKeepsEveryHeaderAndValueReadable(int width)
    {
        var lines = QueryResults.Table(WideRows(2), width).ToList();

        Assert.All(lines, line => Assert.True(line.Length <= width, $"{line.Length} > {width}: {line}"));
        var text = string.Join('\n', lines);
        Assert.Contains("signal_number_24_kmh", text);
        Assert.Contains("0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266", text);
        Assert.Contains("2026-12-05T14:03:11.25Z", text);
        Assert.DoesNotContain("12/05/2026", text);
        // Never a column squeezed to a character or two per line.
        Assert.True(lines.Count < 2 * 31 + 4, $"{lines.Count} lines for 2 rows");
    }

    [Fact]
    public void NarrowResult_FitsAsATable_WithNumbersRightAligned()
    {
        var result = new QueryResult(["device", "readings"], [["0xabc", 7L], ["0xdef", 1234L]], Truncated: false);

        var lines = QueryResults.Table(result, 80).ToList();

        Assert.Equal(["device | readings", "-------+---------", "0xabc  |        7", "0xdef  |     1234"], lines);
    }

    [Fact]
    public void ModeratelyWideResult_CutsTheWidestColumnShort_RatherThanEveryColumn()
    {
        var detail = "The position moved 512 km in 5 s since the previous fix, implying 368,640 km/h; the limit is 300 km/h.";
        var result = new QueryResult(["reason", "detail"], [["teleport", detail]], Truncated: false);

        var lines = QueryResults.Table(result, 60).ToList();

        Assert.All(lines, line => Assert.True(line.Length <= 60));
        Assert.StartsWith("teleport | The position moved", lines[2]);
        Assert.EndsWith("…", lines[2]);
    }

    [Fact]
    public void Piped_Table_KeepsValuesWhole()
    {
        var lines = QueryResults.Table(WideRows(1), width: null).ToList();

        Assert.Equal(3, lines.Count);
        Assert.Contains("0x" + new string('a', 64), lines[2]);
    }

    [Fact]
    public void Csv_QuotesWhatNeedsIt_AndWritesIsoDatesAndTimes()
    {
        var result = new QueryResult(["device", "date", "device_time", "speed", "detail", "rejections_by_reason"],
            [["0xabc", new DateOnly(2026, 12, 5), Time, 54.2, "said \"no\", twice", new Dictionary<string, ulong> { ["stale"] = 2, ["teleport"] = 1 }]], Truncated: false);
        var output = new StringWriter();

        QueryResults.WriteCsv(result, output);

        Assert.Equal("device,date,device_time,speed,detail,rejections_by_reason\n0xabc,2026-12-05,2026-12-05T14:03:11.25Z,54.2,\"said \"\"no\"\", twice\",\"stale=2, teleport=1\"\n", output.ToString());
    }

    [Fact]
    public void Json_IsAnArrayOfObjects_WithNumbersMapsAndNullsAsJson()
    {
        var result = new QueryResult(["device", "seq", "speed", "date", "missing", "reasons"],
            [["0xabc", 3L, 54.2, new DateOnly(2026, 12, 5), null, new Dictionary<string, ulong> { ["stale"] = 2 }]], Truncated: false);
        using var output = new MemoryStream();

        QueryResults.WriteJson(result, output);

        using var json = JsonDocument.Parse(output.ToArray());
        var row = Assert.Single(json.RootElement.EnumerateArray());
        Assert.Equal("0xabc", row.GetProperty("device").GetString());
        Assert.Equal(3, row.GetProperty("seq").GetInt64());
        Assert.Equal(54.2, row.GetProperty("speed").GetDouble());
        Assert.Equal("2026-12-05", row.GetProperty("date").GetString());
        Assert.Equal(JsonValueKind.Null, row.GetProperty("missing").ValueKind);
        Assert.Equal(2, row.GetProperty("reasons").GetProperty("stale").GetInt32());
    }

    [Fact]
    public void Json_OfNoRows_IsAnEmptyArray()
    {
        using var output = new MemoryStream();

        QueryResults.WriteJson(new QueryResult(["device"], [], Truncated: false), output);

        Assert.Equal("[]\n", Encoding.UTF8.GetString(output.ToArray()));
    }

    [Fact]
    public void Text_OfAWholeSecond_HasNoFraction()
    {
        Assert.Equal("2026-12-05T14:03:11Z", QueryResults.Text(new DateTimeOffset(2026, 12, 5, 14, 3, 11, TimeSpan.Zero)));
        Assert.Equal("2026-12-05T14:03:11.000001Z", QueryResults.Text(new DateTimeOffset(2026, 12, 5, 14, 3, 11, TimeSpan.Zero).AddTicks(10)));
    }
}
