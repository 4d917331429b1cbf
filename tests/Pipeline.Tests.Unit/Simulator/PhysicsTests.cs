using Pipeline.Core.Signals;
using Pipeline.Simulator.Models;
using V = Pipeline.Core.Signals.SignalCatalog.Vehicle;
using W = Pipeline.Core.Signals.SignalCatalog.Weather;

namespace Pipeline.Tests.Unit.Simulator;

/// <summary>The simulated world obeys the physical relations the validators and datasets rely on.</summary>
public sealed class PhysicsTests
{
    private static List<(double T, Dictionary<string, double> S, bool Driving)> Drive(VehicleModel car, int seconds, int every = 5)
    {
        var samples = new List<(double, Dictionary<string, double>, bool)>();
        for (var t = 0; t <= seconds; t += every)
        {
            samples.Add((t, car.Signals(), car.Driving));
            car.Advance(every);
        }
        return samples;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Vehicle_DistanceBetweenFixes_MatchesTheSpeedDriven_AndNeverTeleports(int seed)
    {
        var samples = Drive(new VehicleModel(seed, Region.All[seed % Region.All.Count], electric: false), 3600);
        for (var i = 1; i < samples.Count; i++)
        {
            var (t0, a, _) = samples[i - 1];
            var (t1, b, _) = samples[i];
            var km = Geo.DistanceKm(new(a[V.Latitude], a[V.Longitude]), new(b[V.Latitude], b[V.Longitude]));
            var impliedKmh = km / ((t1 - t0) / 3600);
            Assert.InRange(impliedKmh, 0, 135);
            // Average speed over the interval bounds the distance: no movement without speed, no speed without movement.
            var maxKmh = Math.Max(a[V.Speed], b[V.Speed]) + 2.5 * 3.6 * 5;
            Assert.True(impliedKmh <= maxKmh, $"moved at {impliedKmh:F1} km/h while the speedometer read {a[V.Speed]}→{b[V.Speed]}");
            if (a[V.Speed] == 0 && b[V.Speed] == 0) Assert.True(km < 0.04, $"moved {km * 1000:F0} m while standing");
            Assert.InRange(b[V.Odometer] - a[V.Odometer], km - 0.01, km + 0.2);
        }
        Assert.True(samples.Count(s => s.S[V.Speed] > 30) > samples.Count / 4, "the car hardly drove");
    }

    [Fact]
    public void Vehicle_EngineFollowsSpeed_CoolantWarmsUp_FuelFalls()
    {
        var car = new VehicleModel(7, Region.All[0], electric: false);
        var samples = Drive(car, 3600, every: 1);
        var driving = samples.Where(s => s.Driving).ToList();
        Assert.All(driving.Where(s => s.S[V.Speed] >= 10), s => Assert.InRange(s.S[V.EngineSpeed] / s.S[V.Speed], 15, 115));
        Assert.All(driving.Where(s => s.S[V.Speed] >= 3), s => Assert.InRange(s.S[V.EngineSpeed], 900, 3500));
        Assert.All(driving.Where(s => s.S[V.Speed] < 3), s => Assert.Equal(800, s.S[V.EngineSpeed], 0));
        Assert.All(samples.Where(s => !s.Driving), s => Assert.Equal(0, s.S[V.EngineSpeed]));
        Assert.All(driving, s => Assert.InRange(s.S[V.EngineLoad], 12, 100));

        var firstMinutes = samples.Take(10).Average(s => s.S[V.CoolantTemperature]);
        var afterWarmUp = driving.Skip(1200).Take(600).Average(s => s.S[V.CoolantTemperature]);
        Assert.True(firstMinutes < 40, $"a cold engine starts near ambient, not at {firstMinutes:F0} °C");
        Assert.InRange(afterWarmUp, 75, 95);

        for (var i = 1; i < samples.Count; i++)
        {
            Assert.True(samples[i].S[V.Odometer] >= samples[i - 1].S[V.Odometer]);
            var refuelled = samples[i].S[V.FuelLevel] > 90 && samples[i - 1].S[V.FuelLevel] < 9;
            if (!refuelled) Assert.True(samples[i].S[V.FuelLevel] <= samples[i - 1].S[V.FuelLevel] + 1e-9);
        }
        Assert.True(samples[^1].S[V.FuelLevel] < samples[0].S[V.FuelLevel]);
    }

    [Fact]
    public void ElectricVehicle_ReportsChargeNotEngine()
    {
        var car = new VehicleModel(11, Region.All[1], electric: true);
        var samples = Drive(car, 1800);
        Assert.All(samples, s => Assert.False(s.S.ContainsKey(V.EngineSpeed)));
        Assert.True(samples[^1].S[V.StateOfCharge] < samples[0].S[V.StateOfCharge]);
    }

    [Fact]
    public void Vehicle_SameSeed_SameTrip()
    {
        var a = Drive(new VehicleModel(5, Region.All[2], false), 600);
        var b = Drive(new VehicleModel(5, Region.All[2], false), 600);
        var c = Drive(new VehicleModel(6, Region.All[2], false), 600);
        Assert.Equal(a.Select(s => s.S[V.Latitude]), b.Select(s => s.S[V.Latitude]));
        Assert.NotEqual(a.Select(s => s.S[V.Latitude]), c.Select(s => s.S[V.Latitude]));
    }

    [Fact]
    public void Weather_FollowsTheSun_WarmAfternoonsDarkNights()
    {
        var start = new DateTimeOffset(2026, 6, 1, 0, 0, 0, TimeSpan.Zero);
        var region = new RegionWeather(Region.All[0], 3, start);
        var station = new WeatherStationModel(9, region);
        var afternoons = new List<double>();
        var nights = new List<double>();
        for (var hour = 0; hour < 24 * 6; hour++)
        {
            var time = start.AddHours(hour);
            var s = station.Signals(time);
            var solarHour = RegionWeather.SolarHour(time, station.Location.Longitude);
            if (solarHour is >= 14 and < 16) afternoons.Add(s[W.Temperature]);
            if (solarHour is >= 3 and < 5) nights.Add(s[W.Temperature]);
            var sunUp = RegionWeather.SunElevationDegrees(time, station.Location.Latitude, station.Location.Longitude) > 0;
            if (!sunUp) Assert.Equal(0, s[W.SolarIrradiance], 0);
            if (solarHour is >= 11.5 and < 12.5) Assert.True(s[W.SolarIrradiance] > 100, $"noon in June gave {s[W.SolarIrradiance]} W/m²");
            Assert.InRange(s[W.Humidity], 0, 100);
            Assert.True(s[W.WindGust] >= s[W.WindSpeed]);
        }
        Assert.True(afternoons.Average() - nights.Average() > 2, $"afternoons {afternoons.Average():F1} °C vs nights {nights.Average():F1} °C");
    }

    [Fact]
    public void Weather_NeighboursInARegionMoveTogether()
    {
        var start = new DateTimeOffset(2026, 11, 1, 0, 0, 0, TimeSpan.Zero);
        var region = new RegionWeather(Region.All[3], 4, start);
        var a = new WeatherStationModel(1, region);
        var b = new WeatherStationModel(2, region);
        var far = new WeatherStationModel(3, new RegionWeather(Region.All[5], 99, start));
        var (ta, tb, tf, pa, pb) = (new List<double>(), new List<double>(), new List<double>(), new List<double>(), new List<double>());
        for (var minutes = 0; minutes < 3 * 24 * 60; minutes += 30)
        {
            var time = start.AddMinutes(minutes);
            var sa = a.Signals(time);
            var sb = b.Signals(time);
            ta.Add(sa[W.Temperature]);
            tb.Add(sb[W.Temperature]);
            pa.Add(sa[W.Pressure]);
            pb.Add(sb[W.Pressure]);
            tf.Add(far.Signals(time)[W.Temperature]);
        }
        Assert.True(Correlation(ta, tb) > 0.95, $"neighbours' temperatures correlate {Correlation(ta, tb):F2}");
        Assert.True(pa.Zip(pb).All(p => Math.Abs(p.First - p.Second) < 2), "neighbours report the same pressure system");
        Assert.True(Correlation(ta, tb) > Correlation(ta, tf));
    }

    private static double Correlation(List<double> x, List<double> y)
    {
        var (mx, my) = (x.Average(), y.Average());
        var cov = x.Zip(y).Sum(p => (p.First - mx) * (p.Second - my));
        return cov / Math.Sqrt(x.Sum(v => (v - mx) * (v - mx)) * y.Sum(v => (v - my) * (v - my)));
    }
}
