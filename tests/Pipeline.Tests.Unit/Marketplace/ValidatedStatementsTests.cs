using Pipeline.Marketplace.Sandbox;

namespace Pipeline.Tests.Unit.Marketplace;

/// <summary>Statements that passed the validator lately (issue 13's query speed): found by exact text and scope, for a while.</summary>
public sealed class ValidatedStatementsTests
{
    private readonly HandClock _clock = new();

    [Fact]
    public void Find_TheSameTextInTheSameScopeWithinItsLifetime_IsFound()
    {
        using var statements = new ValidatedStatements(_clock);
        statements.Validated("0xbuyer", "vehicle_signals", "SELECT 1");
        _clock.Now += ValidatedStatements.Lifetime - TimeSpan.FromMilliseconds(1);
        Assert.NotNull(statements.Find("vehicle_signals", "SELECT 1"));
    }

    [Fact]
    public void Find_AnotherScopeOrOtherText_IsNotFound()
    {
        using var statements = new ValidatedStatements(_clock);
        statements.Validated("0xbuyer", "vehicle_signals", "SELECT 1");
        Assert.Null(statements.Find("weather_observations", "SELECT 1"));
        Assert.Null(statements.Find("vehicle_signals", "select 1"));
        Assert.Null(statements.Find("vehicle_signals", "SELECT 1 "));
    }

    [Fact]
    public void Find_AfterItsLifetime_IsNotFound()
    {
        using var statements = new ValidatedStatements(_clock);
        statements.Validated("0xbuyer", "vehicle_signals", "SELECT 1");
        _clock.Now += ValidatedStatements.Lifetime;
        Assert.Null(statements.Find("vehicle_signals", "SELECT 1"));
    }

    [Fact]
    public void Carried_IsKeptOnlyForAStatementThatPassed()
    {
        using var statements = new ValidatedStatements(_clock);
        statements.Carried("vehicle_signals", "SELECT 2", "SELECT 2, device, device_time");
        Assert.Null(statements.Find("vehicle_signals", "SELECT 2"));

        statements.Validated("0xbuyer", "vehicle_signals", "SELECT 1");
        Assert.False(statements.Find("vehicle_signals", "SELECT 1")!.CarriedKnown);
        statements.Carried("vehicle_signals", "SELECT 1", null);
        Assert.Equal((true, null), (statements.Find("vehicle_signals", "SELECT 1")!.CarriedKnown, statements.Find("vehicle_signals", "SELECT 1")!.Carried));
    }

    [Fact]
    public void Validated_OneBuyersStreamOfNewStatements_EvictsOnlyTheirOwnOldest_Issue13()
    {
        using var statements = new ValidatedStatements(_clock);
        statements.Validated("0xvictim", "vehicle_signals", "SELECT 1");
        // The flush the old cache allowed: far more distinct statements than it holds, from one buyer, in the same scope.
        var flood = Enumerable.Range(0, 4 * ValidatedStatements.Capacity).Select(i => $"SELECT {i + 2}").ToList();
        foreach (var sql in flood) statements.Validated("0xattacker", "vehicle_signals", sql);

        Assert.NotNull(statements.Find("vehicle_signals", "SELECT 1"));
        var kept = flood.Where(sql => statements.Find("vehicle_signals", sql) is not null).ToList();
        Assert.Equal(flood.TakeLast(ValidatedStatements.PerBuyer), kept);
    }

    [Fact]
    public void Validated_ManyBuyersPastCapacity_StaysWithinItAndKeepsMostOfWhatItHeld()
    {
        using var statements = new ValidatedStatements(_clock);
        var buyers = 2 * ValidatedStatements.Capacity / ValidatedStatements.PerBuyer;
        var all = Enumerable.Range(0, buyers).SelectMany(b => Enumerable.Range(0, ValidatedStatements.PerBuyer).Select(i => (Buyer: $"0x{b}", Sql: $"SELECT {b}, {i}"))).ToList();
        foreach (var (buyer, sql) in all) statements.Validated(buyer, "vehicle_signals", sql);

        var kept = all.Count(s => statements.Find("vehicle_signals", s.Sql) is not null);
        Assert.InRange(kept, ValidatedStatements.Capacity * 8 / 10, ValidatedStatements.Capacity);
        Assert.NotNull(statements.Find("vehicle_signals", all[^1].Sql));
    }

    private sealed class HandClock : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = new(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);
        public override DateTimeOffset GetUtcNow() => Now;
    }
}
