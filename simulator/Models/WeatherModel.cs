using Pipeline.Core.Signals;
using W = Pipeline.Core.Signals.SignalCatalog.Weather;

namespace Pipeline.Simulator.Models;

/// <summary>
/// The weather over one region: slow random processes (temperature anomaly, pressure, wind, cloud, rain) that every
/// station of the region shares, plus the sun. Evaluated at absolute times, so stations sampling at different moments
/// see one consistent sky. Deterministic for a seed.
/// </summary>
public sealed class RegionWeather
{
    private readonly Random _random;
    private DateTimeOffset _time;

    public RegionWeather(Region region, int seed, DateTimeOffset start)
    {
        Region = region;
        _random = new Random(seed);
        _time = start;
        Anomaly = (_random.NextDouble() - 0.5) * 4;
        SeaLevelPressure = 1013 + (_random.NextDouble() - 0.5) * 20;
        WindSpeed = 2 + _random.NextDouble() * 5;
        WindDirection = _random.NextDouble() * 360;
        Cloud = _random.NextDouble();
    }

    public Region Region { get; }
    public double Anomaly { get; private set; }
    public double SeaLevelPressure { get; private set; }
    public double WindSpeed { get; private set; }
    public double WindDirection { get; private set; }
    public double Cloud { get; private set; }
    public double Rain => Cloud > 0.75 ? (Cloud - 0.75) * 24 : 0;

    /// <summary>Moves the region's weather forward to <paramref name="time"/> (Ornstein–Uhlenbeck steps of at most a minute).</summary>
    public void AdvanceTo(DateTimeOffset time)
    {
        while (_time < time)
        {
            var dt = Math.Min(60, (time - _time).TotalSeconds);
            var hours = dt / 3600;
            Anomaly += -Anomaly * hours / 24 + Normal() * 0.6 * Math.Sqrt(hours);
            SeaLevelPressure += (1013 - SeaLevelPressure) * hours / 72 + Normal() * 1.2 * Math.Sqrt(hours);
            WindSpeed = Math.Clamp(WindSpeed + (4 - WindSpeed) * hours / 6 + Normal() * 1.5 * Math.Sqrt(hours), 0.2, 30);
            WindDirection = (WindDirection + Normal() * 20 * Math.Sqrt(hours) + 360) % 360;
            Cloud = Math.Clamp(Cloud + (0.5 - Cloud) * hours / 12 + Normal() * 0.25 * Math.Sqrt(hours), 0, 1);
            _time = _time.AddSeconds(dt);
        }
    }

    /// <summary>Air temperature at sea level: the season's mean, a cycle peaking mid-afternoon solar time, and the anomaly.</summary>
    public double TemperatureAt(DateTimeOffset time, double longitude)
    {
        var solarHour = SolarHour(time, longitude);
        var seasonal = -Region.TemperatureSwingC * 1.5 * Math.Cos(2 * Math.PI * (time.DayOfYear - 20) / 365.25);
        var diurnal = Region.TemperatureSwingC * (1 - 0.6 * Cloud) * Math.Cos(2 * Math.PI * (solarHour - 15) / 24);
        return Region.MeanTemperatureC + seasonal + diurnal + Anomaly;
    }

    /// <summary>Global horizontal irradiance from the sun's elevation, dimmed by cloud.</summary>
    public static double IrradianceAt(DateTimeOffset time, double latitude, double longitude, double cloud)
    {
        var elevation = SunElevationDegrees(time, latitude, longitude);
        if (elevation <= 0) return 0;
        return 1050 * Math.Pow(Math.Sin(Geo.Radians(elevation)), 1.15) * (1 - 0.75 * Math.Pow(cloud, 3));
    }

    public static double SunElevationDegrees(DateTimeOffset time, double latitude, double longitude)
    {
        var declination = 23.44 * Math.Sin(2 * Math.PI * (284 + time.UtcDateTime.DayOfYear) / 365);
        var hourAngle = 15 * (SolarHour(time, longitude) - 12);
        var φ = Geo.Radians(latitude);
        var δ = Geo.Radians(declination);
        return Geo.Degrees(Math.Asin(Math.Sin(φ) * Math.Sin(δ) + Math.Cos(φ) * Math.Cos(δ) * Math.Cos(Geo.Radians(hourAngle))));
    }

    public static double SolarHour(DateTimeOffset time, double longitude) => ((time.UtcDateTime.TimeOfDay.TotalHours + longitude / 15) % 24 + 24) % 24;

    private double Normal() => Math.Sqrt(-2 * Math.Log(1 - _random.NextDouble())) * Math.Cos(2 * Math.PI * _random.NextDouble());
}

/// <summary>A station in a region: the region's weather at its own place and height, with its own small errors.</summary>
public sealed class WeatherStationModel
{
    private readonly Random _random;
    private readonly double _windExposure;

    public WeatherStationModel(int seed, RegionWeather weather)
    {
        _random = new Random(seed);
        Weather = weather;
        Location = Geo.Destination(weather.Region.Center, _random.NextDouble() * 360, 2 + _random.NextDouble() * 25);
        ElevationM = Math.Max(0, weather.Region.AltitudeM + (_random.NextDouble() - 0.3) * 120);
        _windExposure = 0.75 + _random.NextDouble() * 0.5;
    }

    public RegionWeather Weather { get; }
    public GeoPoint Location { get; }
    public double ElevationM { get; }

    public Dictionary<string, double> Signals(DateTimeOffset time)
    {
        Weather.AdvanceTo(time);
        var temperature = Weather.TemperatureAt(time, Location.Longitude) - 0.0065 * ElevationM + Noise(0.15);
        var humidity = Math.Clamp(78 - 2.5 * (temperature - Weather.Region.MeanTemperatureC) + Weather.Rain * 2 + Noise(1.5), 12, 100);
        var wind = Math.Max(0, Weather.WindSpeed * _windExposure + Noise(0.3));
        var irradiance = RegionWeather.IrradianceAt(time, Location.Latitude, Location.Longitude, Weather.Cloud);
        return new Dictionary<string, double>
        {
            [W.Temperature] = Math.Round(temperature, 2),
            [W.Humidity] = Math.Round(humidity, 1),
            [W.Pressure] = Math.Round(Weather.SeaLevelPressure + Noise(0.2), 1),
            [W.WindSpeed] = Math.Round(wind, 2),
            [W.WindGust] = Math.Round(wind * (1.3 + 0.4 * _random.NextDouble()), 2),
            [W.WindDirection] = Math.Round((Weather.WindDirection + Noise(8) + 360) % 360, 0),
            [W.PrecipitationRate] = Math.Round(Weather.Rain, 2),
            [W.SolarIrradiance] = irradiance > 0 ? Math.Round(Math.Max(0, irradiance + Noise(5)), 1) : 0,
            [W.UvIndex] = Math.Round(irradiance / 110, 1),
        };
    }

    private double Noise(double sigma) => (_random.NextDouble() + _random.NextDouble() + _random.NextDouble() - 1.5) * sigma * 2;
}
