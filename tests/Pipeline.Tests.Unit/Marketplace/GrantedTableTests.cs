using Pipeline.Marketplace.Sandbox;

namespace Pipeline.Tests.Unit.Marketplace;

public sealed class GrantedTableTests
{
    private static readonly DateTimeOffset From = new(2026, 11, 23, 0, 0, 0, TimeSpan.Zero);

    [Fact]
    public void Errors_WellFormedGrant_HasNone()
    {
        var table = new GrantedTable("vehicle_signals", TableShape.VehicleSignals, ["/lake/vehicle_signals/date=2026-11-23/part-1-9.parquet"],
            new RowRestriction(From, From.AddDays(1), new BoundingBox(-10, -20, 10, 20), ["0x00000000000000000000000000000000000000aa"]));
        Assert.Empty(table.Errors());
    }

    [Theory]
    [InlineData("Vehicle", "Table name")]
    [InlineData("x; DROP VIEW y", "Table name")]
    [InlineData("vehicle_signals", null)]
    public void Errors_ViewName_IsAPlainIdentifier(string name, string? error)
    {
        var errors = new GrantedTable(name, TableShape.VehicleSignals, [], new RowRestriction(From, null)).Errors().ToList();
        if (error is null) Assert.Empty(errors);
        else Assert.Contains(errors, e => e.Contains(error, StringComparison.Ordinal));
    }

    [Fact]
    public void Errors_FilesBoxTimesAndDevices_AreEachNamed()
    {
        var errors = new GrantedTable("t", TableShape.WeatherObservations, ["lake/x.parquet", "/lake/it's.parquet", "/etc/passwd"],
            new RowRestriction(From, From.AddHours(-1), new BoundingBox(91, 0, 0, 181), ["0xAA", "device"])).Errors().ToList();

        Assert.Equal(3, errors.Count(e => e.StartsWith("File ", StringComparison.Ordinal)));
        Assert.Contains(errors, e => e.Contains("Until must be after From", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("South and North", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.Contains("West and East", StringComparison.Ordinal));
        Assert.Equal(2, errors.Count(e => e.StartsWith("Device ", StringComparison.Ordinal)));
    }
}
