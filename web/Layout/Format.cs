using System.Globalization;

namespace Pipeline.Web.Layout;

/// <summary>How numbers, times and token amounts read on the pages (invariant culture, UTC).</summary>
public static class Format
{
    public static string Time(DateTimeOffset? at) => at?.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss 'UTC'", CultureInfo.InvariantCulture) ?? "—";

    public static string Span(DateTimeOffset? from, DateTimeOffset? until) => from is null ? "no rows yet" : $"{Time(from)} → {Time(until)}";

    public static string Age(double? seconds) => seconds switch
    {
        null => "—",
        < 120 => $"{seconds:0} s ago",
        < 7200 => $"{seconds / 60:0} min ago",
        _ => $"{seconds / 3600:0.#} h ago",
    };

    public static string Ratio(double? value) => value?.ToString("0.00", CultureInfo.InvariantCulture) ?? "—";

    public static string Number(double? value) => value?.ToString("N0", CultureInfo.InvariantCulture) ?? "—";

    /// <summary>A whole number sent as a decimal string (too big for a double to hold exactly), with thousands separators.</summary>
    public static string Integer(string? digits) =>
        System.Numerics.BigInteger.TryParse(digits, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value) ? value.ToString("N0", CultureInfo.InvariantCulture) : digits ?? "—";

    /// <summary>A score component in millionths as a ratio with its ppm ("0.7333 (733,333 ppm)"); anything else as it came.</summary>
    public static string Ppm(System.Text.Json.JsonElement value) => value.ValueKind == System.Text.Json.JsonValueKind.Number && value.TryGetInt64(out var ppm)
        ? string.Create(CultureInfo.InvariantCulture, $"{ppm / 1e6:0.####} ({ppm:N0} ppm)")
        : Cell(value);

    /// <summary>Token base units (18 decimals, a decimal string) as whole tokens with up to 6 decimals.</summary>
    public static string Tokens(string? baseUnits)
    {
        if (!System.Numerics.BigInteger.TryParse(baseUnits, NumberStyles.None, CultureInfo.InvariantCulture, out var units)) return baseUnits ?? "—";
        var whole = System.Numerics.BigInteger.DivRem(units, System.Numerics.BigInteger.Pow(10, 18), out var fraction);
        var decimals = (fraction / System.Numerics.BigInteger.Pow(10, 12)).ToString("D6", CultureInfo.InvariantCulture).TrimEnd('0');
        return decimals.Length == 0 ? whole.ToString(CultureInfo.InvariantCulture) : $"{whole}.{decimals}";
    }

    public static (double Lat, double Lon)? LatLon(string? text) =>
        text?.Split(',') is [var a, var b]
        && double.TryParse(a, NumberStyles.Float, CultureInfo.InvariantCulture, out var lat)
        && double.TryParse(b, NumberStyles.Float, CultureInfo.InvariantCulture, out var lon)
            ? (lat, lon) : null;

    /// <summary>A series' bucket as words: "minute", "hour", "day", "week", else a count of days.</summary>
    public static string Bucket(int seconds) => seconds switch
    {
        60 => "minute",
        3_600 => "hour",
        86_400 => "day",
        604_800 => "week",
        _ => $"{seconds / 86_400.0:0.#} days",
    };

    /// <summary>A 1° cell as its south-west corner reads ("53°N 7°W"), and the centre a series asks for it by.</summary>
    public static string CellName(Pipeline.Marketplace.Catalog.RegionCell cell) =>
        string.Create(CultureInfo.InvariantCulture, $"{Math.Abs(cell.South):0}°{(cell.South < 0 ? "S" : "N")} {Math.Abs(cell.West):0}°{(cell.West < 0 ? "W" : "E")}");

    public static string CellCentre(Pipeline.Marketplace.Catalog.RegionCell cell) => string.Create(CultureInfo.InvariantCulture, $"{cell.South + 0.5},{cell.West + 0.5}");

    /// <summary>A preview or query cell as text: JSON null as empty, strings unquoted.</summary>
    public static string Cell(System.Text.Json.JsonElement value) => value.ValueKind switch
    {
        System.Text.Json.JsonValueKind.Null or System.Text.Json.JsonValueKind.Undefined => "",
        System.Text.Json.JsonValueKind.String => value.GetString() ?? "",
        _ => value.GetRawText(),
    };
}
