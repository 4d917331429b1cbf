using System.Text.RegularExpressions;

namespace Pipeline.Marketplace.Sandbox;

/// <summary>
/// The columns of a lake dataset that a grant's row restrictions and an export's ordering apply to. The lake must
/// partition the dataset by the UTC day of <see cref="TimeColumn"/>: a grant's view reads a day inside its range without
/// the time condition (<see cref="SqlSandbox.ViewSql"/>).
/// </summary>
public sealed record TableShape(string DeviceColumn, string TimeColumn, string? LatitudeColumn, string? LongitudeColumn, string SequenceColumn)
{
    /// <summary>The lake's <c>vehicle_signals</c>: coarsened positions per reading.</summary>
    public static TableShape VehicleSignals { get; } = new("device", "device_time", "latitude", "longitude", "event_seq");

    /// <summary>The lake's <c>weather_observations</c>: a station's fixed position.</summary>
    public static TableShape WeatherObservations { get; } = new("station", "device_time", "station_latitude", "station_longitude", "event_seq");
}

/// <summary>A rectangle in degrees (WGS84); rows whose position is unknown fall outside it.</summary>
public sealed record BoundingBox(double South, double West, double North, double East)
{
    public IEnumerable<string> Errors()
    {
        if (!(South is >= -90 and <= 90 && North is >= -90 and <= 90 && South <= North)) yield return "South and North must be latitudes in [-90, 90] with South ≤ North.";
        if (!(West is >= -180 and <= 180 && East is >= -180 and <= 180 && West <= East)) yield return "West and East must be longitudes in [-180, 180] with West ≤ East.";
    }
}

/// <summary>
/// Which rows of a dataset a grant covers: device time in [From, Until) (Until open-ended for a subscription), optionally
/// inside a box, optionally only the listed devices (the caller resolves a kind or make filter into device addresses).
/// </summary>
public sealed record RowRestriction(DateTimeOffset From, DateTimeOffset? Until, BoundingBox? Box = null, IReadOnlyCollection<string>? Devices = null);

/// <summary>
/// One table a buyer's SQL may read: the view named <see cref="Name"/> over exactly <see cref="Files"/> (absolute paths of
/// the lake's Parquet files of the dataset), restricted to <see cref="Rows"/>. Plain data: the API builds it from a grant.
/// </summary>
public sealed partial record GrantedTable(string Name, TableShape Shape, IReadOnlyList<string> Files, RowRestriction Rows)
{
    /// <summary>What is wrong with this description, if anything; the sandbox refuses to open over one with errors.</summary>
    public IEnumerable<string> Errors()
    {
        if (!ViewName().IsMatch(Name)) yield return $"Table name '{Name}' must be 1–63 characters of a–z, 0–9 and _, starting with a letter or _.";
        foreach (var file in Files.Where(f => !Path.IsPathFullyQualified(f) || f.Contains('\'', StringComparison.Ordinal) || !f.EndsWith(".parquet", StringComparison.Ordinal)))
            yield return $"File '{file}' must be an absolute path to a .parquet file, without quotes.";
        if (Rows.Until is { } until && until <= Rows.From) yield return "The time range is empty: Until must be after From.";
        if (Rows.Box is { } box)
        {
            if (Shape.LatitudeColumn is null || Shape.LongitudeColumn is null) yield return $"Table '{Name}' has no position to restrict to a box.";
            foreach (var error in box.Errors()) yield return error;
        }
        foreach (var device in Rows.Devices ?? [])
            if (!DeviceAddress().IsMatch(device)) yield return $"Device '{device}' must be 0x and 40 lowercase hex digits.";
    }

    [GeneratedRegex("^[a-z_][a-z0-9_]{0,62}$")]
    private static partial Regex ViewName();

    [GeneratedRegex("^0x[0-9a-f]{40}$")]
    private static partial Regex DeviceAddress();
}
