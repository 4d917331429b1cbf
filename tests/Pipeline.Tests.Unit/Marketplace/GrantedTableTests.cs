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

    [Fact]
    public void ViewSql_FileOfAWholeDayInsideTheGrant_IsReadWithoutTheTimeCondition()
    {
        string[] files = ["/lake/vehicle_signals/date=2026-11-23/part-1-9.parquet", "/lake/vehicle_signals/date=2026-11-24/part-10-19.parquet",
            "/lake/vehicle_signals/date=2026-11-25/part-20-29.parquet", "/lake/vehicle_signals/part-30-39.parquet"];
        var view = SqlSandbox.ViewSql(new GrantedTable("vehicle_signals", TableShape.VehicleSignals, files,
            new RowRestriction(From.AddHours(6), From.AddDays(2).AddHours(1), null, ["0x00000000000000000000000000000000000000aa"])));

        var scans = view["CREATE VIEW vehicle_signals AS ".Length..].Split(" UNION ALL ");
        Assert.Equal(2, scans.Length);
        // The 24th lies wholly inside [23rd 06:00, 25th 01:00): only the device condition applies to it.
        Assert.Contains("date=2026-11-24", scans[0], StringComparison.Ordinal);
        Assert.DoesNotContain("date=2026-11-23", scans[0], StringComparison.Ordinal);
        Assert.DoesNotContain("device_time", scans[0], StringComparison.Ordinal);
        Assert.Contains("device IN ('0x00000000000000000000000000000000000000aa')", scans[0], StringComparison.Ordinal);
        // The days in part, and a file whose day is not known, keep every condition.
        foreach (var edge in new[] { "date=2026-11-23", "date=2026-11-25", "/part-30-39.parquet" }) Assert.Contains(edge, scans[1], StringComparison.Ordinal);
        Assert.Contains("device_time >= TIMESTAMPTZ '2026-11-23 06:00:00.000000+00' AND device_time < TIMESTAMPTZ '2026-11-25 01:00:00.000000+00'", scans[1], StringComparison.Ordinal);
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
