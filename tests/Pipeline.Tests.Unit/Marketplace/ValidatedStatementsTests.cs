using Pipeline.Marketplace.Sandbox;

namespace Pipeline.Tests.Unit.Marketplace;

/// <summary>Statements that passed the validator lately (issue 13's query speed): found by exact text and scope, for a while.</summary>
public sealed class ValidatedStatementsTests
{
    private readonly HandClock _clock = new();

    [Fact]
    public void Find_TheSameTextInTheSameScopeWithinItsLifetime_IsFound()
    {
        var statements = new ValidatedStatements(_clock);
        statements.Validated("vehicle_signals", "SELECT 1");
        _clock.Now += ValidatedStatements.Lifetime - TimeSpan.FromMilliseconds(1);
        Assert.NotNull(statements.Find("vehicle_signals", "SELECT 1"));
    }

    [Fact]
    public void Find_AnotherScopeOrOtherText_IsNotFound()
    {
        var statements = new ValidatedStatements(_clock);
        statements.Validated("vehicle_signals", "SELECT 1");
        Assert.Null(statements.Find("weather_observations", "SELECT 1"));
        Assert.Null(statements.Find("vehicle_signals", "select 1"));
        Assert.Null(statements.Find("vehicle_signals", "SELECT 1 "));
    }

    [Fact]
    public void Find_AfterItsLifetime_IsNotFound()
    {
        var statements = new ValidatedStatements(_clock);
        statements.Validated("vehicle_signals", "SELECT 1");
        _clock.Now += ValidatedStatements.Lifetime;
        Assert.Null(statements.Find("vehicle_signals", "SELECT 1"));
    }

    [Fact]
    public void Carried_IsKeptOnlyForAStatementThatPassed()
    {
        var statements = new ValidatedStatements(_clock);
        statements.Carried("vehicle_signals", "SELECT 2", "SELECT 2, device, device_time");
        Assert.Null(statements.Find("vehicle_signals", "SELECT 2"));

        statements.Validated("vehicle_signals", "SELECT 1");
        Assert.False(statements.Find("vehicle_signals", "SELECT 1")!.CarriedKnown);
        statements.Carried("vehicle_signals", "SELECT 1", null);
        Assert.Equal((true, null), (statements.Find("vehicle_signals", "SELECT 1")!.CarriedKnown, statements.Find("vehicle_signals", "SELECT 1")!.Carried));
    }

    private sealed class HandClock : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = new(2026, 12, 1, 0, 0, 0, TimeSpan.Zero);
        public override DateTimeOffset GetUtcNow() => Now;
    }
}
