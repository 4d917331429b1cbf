using System.Globalization;
using System.Numerics;
using Pipeline.Core.Envelope;
using Pipeline.Rewards.Epochs;
using Pipeline.Tests.Support;
using static Pipeline.Tests.Unit.Rewards.EpochScenario;

namespace Pipeline.Tests.Unit.Rewards;

/// <summary>The README's worked example of the rewards formula: its inputs computed here give exactly its figures.</summary>
public sealed class RewardsFormulaReadmeTests
{
    private const string Begin = "<!-- rewards-example -->";
    private const string End = "<!-- /rewards-example -->";

    [Fact]
    public void WorkedExample_ComputedFromItsInputTable_GivesEveryFigureOfItsResultTables()
    {
        var tables = Tables(File.ReadAllText(Path.Combine(RepositoryTools.Root, "README.md")));
        Assert.Equal(3, tables.Count);
        var inputs = Inputs(tables[0]);

        var rewards = EpochCalculator.Calculate(DefaultPolicy, inputs.Inputs, new Dictionary<Core.Crypto.EthAddress, BigInteger>());

        var deviceRows = inputs.Names.Select(name =>
        {
            var d = DeviceOf(rewards, name);
            return new[] { name, $"{d.CappedVolume}", $"{d.TimelinessPpm}", $"{d.QualityPpm}", $"{d.AgreementPpm}", $"{d.PenaltyPpm}",
                Decimal18(d.Score), Decimal18(d.EmissionAmount), Decimal18(d.SalesAmount) };
        }).ToList();
        var contributorRows = inputs.Owners.Select(owner => new[] { owner, Decimal18(ContributorOf(rewards, owner).Amount) })
            .Append(["treasury", Decimal18(rewards.Treasury)]).ToList();

        Assert.True(Same(deviceRows, tables[1]) && Same(contributorRows, tables[2]),
            "The README's worked example should read:\n" + Markdown(deviceRows) + "\n" + Markdown(contributorRows));
    }

    private static (EpochInputs Inputs, List<string> Names, List<string> Owners) Inputs(List<string[]> rows)
    {
        var scenario = new List<DeviceEpochQuality>();
        var stations = new List<StationEpochMeans>();
        var owners = new List<DeviceOwner>();
        var sales = new List<DeviceSales>();
        foreach (var row in rows)
        {
            var (device, kind) = (Address(row[0]), row[2] == "vehicle" ? DeviceKind.Vehicle : DeviceKind.Weather);
            var rejections = row[6].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(r => r.Split(' ')).ToDictionary(r => r[0], r => long.Parse(r[1], CultureInfo.InvariantCulture));
            scenario.Add(new DeviceEpochQuality(device, kind, Number(row[3]), rejections.Values.Sum(), Scaled(row[4], 6), Scaled(row[5], 6),
                rejections.GetValueOrDefault("seq_conflict"), rejections));
            owners.Add(new DeviceOwner(device, Address(row[1])));
            if (row[7].Length > 0)
            {
                var position = Pair(row[7]);
                var means = Pair(row[8]);
                stations.Add(new StationEpochMeans(device, Scaled(position[0], 6), Scaled(position[1], 6),
                    new Dictionary<string, long> { ["temperature_c"] = Scaled(means[0], 3), ["humidity_pct"] = Scaled(means[1], 3) }));
            }
            if (row[9].Length > 0)
            {
                var sold = row[9].Split('/', StringSplitOptions.TrimEntries);
                sales.Add(new DeviceSales(device, Number(sold[0]), Number(sold[1])));
            }
        }
        return (new EpochInputs(1, scenario, stations, owners, sales), [.. rows.Select(r => r[0])], [.. rows.Select(r => r[1]).Distinct()]);
    }

    /// <summary>The pipe tables between the markers, without their header and separator lines.</summary>
    private static List<List<string[]>> Tables(string readme)
    {
        var start = readme.IndexOf(Begin, StringComparison.Ordinal);
        var end = readme.IndexOf(End, StringComparison.Ordinal);
        Assert.True(start >= 0 && end > start, $"The README has no block between {Begin} and {End}.");
        var tables = new List<List<string[]>>();
        List<string[]>? current = null;
        foreach (var line in readme[start..end].Split('\n').Select(l => l.Trim()))
        {
            if (!line.StartsWith('|')) { current = null; continue; }
            if (current is null) tables.Add(current = []);
            current.Add([.. line.Trim('|').Split('|').Select(c => c.Trim())]);
        }
        return [.. tables.Select(t => t.Skip(2).ToList())];
    }

    private static bool Same(List<string[]> computed, List<string[]> written) =>
        computed.Count == written.Count && computed.Zip(written).All(pair => pair.First.SequenceEqual(pair.Second));

    private static string Markdown(List<string[]> rows) => string.Join('\n', rows.Select(r => "| " + string.Join(" | ", r) + " |"));

    private static long Number(string text) => long.Parse(text, CultureInfo.InvariantCulture);

    private static string[] Pair(string text) => text.Split(',', StringSplitOptions.TrimEntries);

    /// <summary>A decimal such as "0.5" or "-105.2705" times 10^digits, exactly.</summary>
    private static long Scaled(string text, int digits) => (long)(decimal.Parse(text, CultureInfo.InvariantCulture) * (decimal)Math.Pow(10, digits));

    /// <summary>A base-unit amount as tokens: the exact decimal with 18 places, trailing zeros dropped.</summary>
    private static string Decimal18(BigInteger units)
    {
        var whole = BigInteger.DivRem(units, BigInteger.Pow(10, 18), out var fraction);
        var digits = fraction.ToString("D18", CultureInfo.InvariantCulture).TrimEnd('0');
        return digits.Length == 0 ? whole.ToString(CultureInfo.InvariantCulture) : $"{whole}.{digits}";
    }
}
