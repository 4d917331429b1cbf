using Pipeline.Tests.Support.Fuzz;
using Xunit.Abstractions;

namespace Pipeline.Tests.Unit.Fuzz;

/// <summary>
/// A fixed-seed slice of the parser fuzz (`./depin bench fuzz` runs a million bodies per parser): every hostile body
/// gets a reading or a refusal with a reason, never an exception. The outcomes are counted and must spread over the
/// parsers' paths, so a generator that stopped reaching past the first check would fail here too.
/// </summary>
public sealed class ParserFuzzTests(ITestOutputHelper output)
{
    private const ulong Seed = 20261205;

    [Fact]
    public void BatchParser_FiveThousandHostileBodies_EachAnsweredWithAReadingOrAReason()
    {
        var counts = ParserFuzz.Readings(Seed, 5_000);

        output.WriteLine(string.Join(", ", counts.Outcomes.Select(o => $"{o.Key} {o.Value}")));
        Assert.Equal(5_000, counts.Bodies);
        Assert.True(counts.Outcomes.GetValueOrDefault("accepted") > 200, "some bodies come through whole");
        foreach (var reason in new[] { "malformed", "unknown_field", "too_large", "bad_encoding", "bad_address", "bad_signature" })
            Assert.True(counts.Outcomes.GetValueOrDefault(reason) > 20, $"the generators reach {reason}");
    }

    [Fact]
    public void RegistryParsers_TwoThousandHostileTypedData_EachAnsweredWithAnEventOrAReason()
    {
        var counts = ParserFuzz.Registry(Seed, 2_000);

        output.WriteLine(string.Join(", ", counts.Outcomes.Select(o => $"{o.Key} {o.Value}")));
        Assert.Equal(2_000, counts.Bodies);
        foreach (var reason in new[] { "malformed", "unknown_field", "bad_encoding", "bad_address", "wrong_network", "bad_signature", "too_large" })
            Assert.True(counts.Outcomes.GetValueOrDefault(reason) > 5, $"the generators reach {reason}");
    }
}
