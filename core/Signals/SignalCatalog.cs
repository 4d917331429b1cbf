using Pipeline.Core.Envelope;

namespace Pipeline.Core.Signals;

/// <summary>One signal a device may report: its wire name, unit, physically plausible range and dataset column.</summary>
public sealed record SignalDefinition(string Name, DeviceKind Kind, string Unit, double Min, double Max, string Column, string Description);

/// <summary>
/// The closed list of signals: COVESA VSS names for vehicles, short names for weather stations. Ranges are what the
/// physical world allows (a road car, a surface weather station), not what an encoding can carry; a value outside is
/// refused with out_of_range.
/// </summary>
public static class SignalCatalog
{
    public static class Vehicle
    {
        public const string Speed = "Vehicle.Speed";
        public const string Latitude = "Vehicle.CurrentLocation.Latitude";
        public const string Longitude = "Vehicle.CurrentLocation.Longitude";
        public const string Altitude = "Vehicle.CurrentLocation.Altitude";
        public const string Heading = "Vehicle.CurrentLocation.Heading";
        public const string EngineSpeed = "Vehicle.Powertrain.CombustionEngine.Speed";
        public const string CoolantTemperature = "Vehicle.Powertrain.CombustionEngine.ECT";
        public const string OilTemperature = "Vehicle.Powertrain.CombustionEngine.EOT";
        public const string EngineLoad = "Vehicle.OBD.EngineLoad";
        public const string ThrottlePosition = "Vehicle.OBD.ThrottlePosition";
        public const string IntakePressure = "Vehicle.OBD.MAP";
        public const string IntakeTemperature = "Vehicle.OBD.IntakeTemp";
        public const string AirFlow = "Vehicle.OBD.MAF";
        public const string RunTime = "Vehicle.OBD.RunTime";
        public const string DistanceSinceCodesCleared = "Vehicle.OBD.DistanceSinceDTCClear";
        public const string FuelRate = "Vehicle.OBD.FuelRate";
        public const string HybridBatteryRemaining = "Vehicle.OBD.HybridBatteryRemaining";
        public const string FuelLevel = "Vehicle.Powertrain.FuelSystem.RelativeLevel";
        public const string Odometer = "Vehicle.TraveledDistance";
        public const string StateOfCharge = "Vehicle.Powertrain.TractionBattery.StateOfCharge.Current";
        public const string AmbientTemperature = "Vehicle.Exterior.AirTemperature";
    }

    public static class Weather
    {
        public const string Temperature = "temperature";
        public const string Humidity = "humidity";
        public const string Pressure = "pressure";
        public const string WindSpeed = "wind_speed";
        public const string WindGust = "wind_gust";
        public const string WindDirection = "wind_direction";
        public const string PrecipitationRate = "precipitation_rate";
        public const string SolarIrradiance = "solar_irradiance";
        public const string UvIndex = "uv_index";
    }

    public static IReadOnlyList<SignalDefinition> All { get; } =
    [
        new(Vehicle.Speed, DeviceKind.Vehicle, "km/h", 0, 300, "speed_kmh", "Vehicle speed"),
        new(Vehicle.Latitude, DeviceKind.Vehicle, "deg", -90, 90, "latitude", "Latitude, WGS84 (coarsened in datasets)"),
        new(Vehicle.Longitude, DeviceKind.Vehicle, "deg", -180, 180, "longitude", "Longitude, WGS84 (coarsened in datasets)"),
        new(Vehicle.Altitude, DeviceKind.Vehicle, "m", -500, 9000, "altitude_m", "Altitude above sea level"),
        new(Vehicle.Heading, DeviceKind.Vehicle, "deg", 0, 360, "heading_deg", "Heading, clockwise from north"),
        new(Vehicle.EngineSpeed, DeviceKind.Vehicle, "rpm", 0, 10_000, "engine_rpm", "Engine speed"),
        new(Vehicle.CoolantTemperature, DeviceKind.Vehicle, "degC", -40, 150, "coolant_temp_c", "Engine coolant temperature"),
        new(Vehicle.OilTemperature, DeviceKind.Vehicle, "degC", -40, 170, "oil_temp_c", "Engine oil temperature"),
        new(Vehicle.EngineLoad, DeviceKind.Vehicle, "percent", 0, 100, "engine_load_pct", "Calculated engine load"),
        new(Vehicle.ThrottlePosition, DeviceKind.Vehicle, "percent", 0, 100, "throttle_pct", "Throttle position"),
        new(Vehicle.IntakePressure, DeviceKind.Vehicle, "kPa", 0, 255, "intake_pressure_kpa", "Intake manifold absolute pressure"),
        new(Vehicle.IntakeTemperature, DeviceKind.Vehicle, "degC", -40, 120, "intake_temp_c", "Intake air temperature"),
        new(Vehicle.AirFlow, DeviceKind.Vehicle, "g/s", 0, 655.35, "maf_gs", "Mass air flow"),
        new(Vehicle.RunTime, DeviceKind.Vehicle, "s", 0, 65_535, "run_time_s", "Time since engine start"),
        new(Vehicle.DistanceSinceCodesCleared, DeviceKind.Vehicle, "km", 0, 65_535, "distance_since_dtc_clear_km", "Distance since trouble codes were cleared"),
        new(Vehicle.FuelRate, DeviceKind.Vehicle, "l/h", 0, 250, "fuel_rate_lh", "Engine fuel rate"),
        new(Vehicle.HybridBatteryRemaining, DeviceKind.Vehicle, "percent", 0, 100, "hybrid_battery_pct", "Hybrid battery pack remaining life"),
        new(Vehicle.FuelLevel, DeviceKind.Vehicle, "percent", 0, 100, "fuel_level_pct", "Fuel tank level"),
        new(Vehicle.Odometer, DeviceKind.Vehicle, "km", 0, 2_000_000, "odometer_km", "Odometer"),
        new(Vehicle.StateOfCharge, DeviceKind.Vehicle, "percent", 0, 100, "soc_pct", "Traction battery state of charge"),
        new(Vehicle.AmbientTemperature, DeviceKind.Vehicle, "degC", -60, 60, "ambient_temp_c", "Ambient air temperature"),

        new(Weather.Temperature, DeviceKind.Weather, "degC", -90, 60, "temperature_c", "Air temperature"),
        new(Weather.Humidity, DeviceKind.Weather, "percent", 0, 100, "humidity_pct", "Relative humidity"),
        new(Weather.Pressure, DeviceKind.Weather, "hPa", 300, 1100, "pressure_hpa", "Air pressure (station or sea level, as the station reports)"),
        new(Weather.WindSpeed, DeviceKind.Weather, "m/s", 0, 113, "wind_speed_ms", "Mean wind speed"),
        new(Weather.WindGust, DeviceKind.Weather, "m/s", 0, 113, "wind_gust_ms", "Wind gust"),
        new(Weather.WindDirection, DeviceKind.Weather, "deg", 0, 360, "wind_direction_deg", "Direction the wind comes from, clockwise from north"),
        new(Weather.PrecipitationRate, DeviceKind.Weather, "mm/h", 0, 500, "precipitation_mmh", "Precipitation rate"),
        new(Weather.SolarIrradiance, DeviceKind.Weather, "W/m2", -25, 1_500, "solar_irradiance_wm2", "Global horizontal irradiance (pyranometers read slightly negative at night)"),
        new(Weather.UvIndex, DeviceKind.Weather, "index", 0, 20, "uv_index", "UV index"),
    ];

    private static readonly Dictionary<string, SignalDefinition> ByName = All.ToDictionary(s => s.Name, StringComparer.Ordinal);

    public static bool TryGet(string name, out SignalDefinition definition) => ByName.TryGetValue(name, out definition!);

    private static readonly Dictionary<string, SignalDefinition>.AlternateLookup<ReadOnlySpan<char>> ByNameSpan = ByName.GetAlternateLookup<ReadOnlySpan<char>>();

    /// <summary>The catalog's own string for a name given as raw (unescaped) UTF-8: parsers use it instead of allocating one per reading.</summary>
    public static bool TryGetName(ReadOnlySpan<byte> utf8, out string name)
    {
        name = "";
        Span<char> chars = stackalloc char[64];
        if (utf8.Length > chars.Length) return false;
        for (var i = 0; i < utf8.Length; i++)
        {
            if (utf8[i] > 0x7F) return false;
            chars[i] = (char)utf8[i];
        }
        if (!ByNameSpan.TryGetValue(chars[..utf8.Length], out var definition)) return false;
        name = definition.Name;
        return true;
    }

    public static IEnumerable<SignalDefinition> For(DeviceKind kind) => All.Where(s => s.Kind == kind);
}
