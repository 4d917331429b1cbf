using Pipeline.Core.Signals;
using V = Pipeline.Core.Signals.SignalCatalog.Vehicle;

namespace Pipeline.Simulator.Models;

/// <summary>
/// A car on trips around its home region: continuous position along a route, speed that follows road types with
/// bounded acceleration, engine speed and load that follow speed and acceleration, coolant warming towards operating
/// temperature, fuel (or battery) falling and the odometer rising with distance. Deterministic for a given seed.
/// </summary>
public sealed class VehicleModel
{
    private const double MaxAcceleration = 2.5;   // m/s², a brisk but ordinary car
    private const double MaxDeceleration = 3.5;
    private const double TankLitres = 50;
    private const double BatteryKwh = 60;

    private readonly Random _random;
    private readonly Region _region;
    private readonly List<(GeoPoint Point, double SpeedLimitKmh, bool Stop)> _route = [];
    private int _next;
    private double _parkedFor;
    private double _stoppedFor;

    public VehicleModel(int seed, Region region, bool electric)
    {
        _random = new Random(seed);
        _region = region;
        Electric = electric;
        Position = Geo.Destination(region.Center, _random.NextDouble() * 360, _random.NextDouble() * 8);
        OdometerKm = 5_000 + _random.NextDouble() * 150_000;
        FuelPercent = 40 + _random.NextDouble() * 60;
        CoolantC = AmbientC;
        Altitude = region.AltitudeM + _random.NextDouble() * 20;
        PlanTrip();
    }

    public bool Electric { get; }
    public GeoPoint Position { get; private set; }
    public double Altitude { get; private set; }
    public double HeadingDegrees { get; private set; }
    public double SpeedKmh { get; private set; }
    public double AccelerationMs2 { get; private set; }
    public double OdometerKm { get; private set; }
    public double FuelPercent { get; private set; }
    public double CoolantC { get; private set; }
    public double RunTimeS { get; private set; }
    public bool Driving => _parkedFor <= 0;
    public double AmbientC => _region.MeanTemperatureC;

    /// <summary>Engine speed: idle when stopped, otherwise the speed through a gear chosen to keep 1,500–3,000 rpm.</summary>
    public double EngineRpm => !Driving ? 0 : SpeedKmh < 3 ? 800 : Math.Max(900, SpeedKmh * 110 / Math.Clamp(Math.Ceiling(SpeedKmh / 22), 1, 6));

    /// <summary>Calculated load: rolling and air resistance grow with speed, acceleration adds the rest.</summary>
    public double EngineLoadPercent => !Driving ? 0 : Math.Clamp(18 + 0.22 * SpeedKmh + 0.0012 * SpeedKmh * SpeedKmh + 22 * Math.Max(0, AccelerationMs2), 12, 100);

    /// <summary>Litres per hour: idle flow plus consumption of about 6.5 l/100 km, more when accelerating.</summary>
    public double FuelRateLh => !Driving ? 0 : 0.8 + SpeedKmh * 0.065 * (1 + 0.25 * Math.Max(0, AccelerationMs2));

    /// <summary>Puts the car where a previous run left it, so a restart does not look like a jump.</summary>
    public void Restore(GeoPoint position, double odometerKm, double fuelPercent)
    {
        Position = position;
        OdometerKm = odometerKm;
        FuelPercent = fuelPercent;
        PlanTrip();
    }

    /// <summary>Advances the car by dt seconds.</summary>
    public void Advance(double dt)
    {
        if (!Driving)
        {
            _parkedFor -= dt;
            CoolantC += (AmbientC - CoolantC) * (1 - Math.Exp(-dt / 1800));
            if (_parkedFor <= 0) PlanTrip();
            return;
        }
        var remaining = dt;
        while (remaining > 0 && Driving)
        {
            var step = Math.Min(1, remaining);
            Step(step);
            remaining -= step;
        }
    }

    private void Step(double dt)
    {
        RunTimeS += dt;
        CoolantC += (90 - CoolantC) * (1 - Math.Exp(-dt / 240));
        if (_stoppedFor > 0)
        {
            _stoppedFor -= dt;
            AccelerationMs2 = 0;
            SpeedKmh = 0;
            return;
        }

        var (target, limit, stop) = _route[_next];
        var distanceKm = Geo.DistanceKm(Position, target);
        var speed = SpeedKmh / 3.6;
        // Brake in time to reach the next waypoint at walking pace if it is a stop or a turn.
        var arrival = stop ? 0 : Math.Min(limit, 30) / 3.6;
        var brakingDistance = (speed * speed - arrival * arrival) / (2 * MaxDeceleration) / 1000;
        // Near the waypoint: roll in at walking pace rather than stopping short of it.
        var wanted = distanceKm <= Math.Max(brakingDistance, 0) + 0.005
            ? Math.Max(arrival, 1.5)
            : limit / 3.6 * (0.92 + 0.08 * Math.Sin(RunTimeS / 17));
        var acceleration = Math.Clamp((wanted - speed) / dt, -MaxDeceleration, MaxAcceleration);
        var newSpeed = Math.Max(0, speed + acceleration * dt);
        var travelledKm = (speed + newSpeed) / 2 * dt / 1000;

        if (travelledKm >= distanceKm || distanceKm < 0.002)
        {
            Position = target;
            travelledKm = distanceKm;
            _next++;
            if (stop)
            {
                _stoppedFor = 5 + _random.NextDouble() * 25;
                newSpeed = 0;
            }
            if (_next == _route.Count) Park();
        }
        else
        {
            HeadingDegrees = Geo.BearingDegrees(Position, target);
            Position = Geo.Destination(Position, HeadingDegrees, travelledKm);
        }
        AccelerationMs2 = acceleration;
        SpeedKmh = newSpeed * 3.6;
        OdometerKm += travelledKm;
        Altitude = Math.Max(-10, Altitude + (_random.NextDouble() - 0.5) * travelledKm * 4);
        FuelPercent = Math.Max(0, FuelPercent - (Electric ? travelledKm * 0.17 / BatteryKwh : travelledKm * 0.065 / TankLitres) * 100);
        if (FuelPercent < 8) FuelPercent = 95; // refuelled or recharged at the next stop
    }

    private void Park()
    {
        SpeedKmh = 0;
        AccelerationMs2 = 0;
        RunTimeS = 0;
        _parkedFor = 20 + _random.NextDouble() * 90;
    }

    /// <summary>A trip of 3–15 km through waypoints with a speed limit each (town, arterial, motorway) and some stops.</summary>
    private void PlanTrip()
    {
        _route.Clear();
        _next = 0;
        var legs = 4 + _random.Next(8);
        var bearing = _random.NextDouble() * 360;
        var point = Position;
        // Keep trips near home: head back when far out.
        if (Geo.DistanceKm(point, _region.Center) > 12) bearing = Geo.BearingDegrees(point, _region.Center);
        for (var i = 0; i < legs; i++)
        {
            var kind = _random.NextDouble();
            var (limit, length) = kind < 0.55 ? (50.0, 0.3 + _random.NextDouble() * 0.9) : kind < 0.85 ? (80.0, 0.8 + _random.NextDouble() * 2) : (120.0, 2 + _random.NextDouble() * 4);
            bearing = (bearing + (_random.NextDouble() - 0.5) * 90 + 360) % 360;
            point = Geo.Destination(point, bearing, length);
            _route.Add((point, limit, _random.NextDouble() < 0.3));
        }
        _route[^1] = (_route[^1].Point, _route[^1].SpeedLimitKmh, true);
        _parkedFor = 0;
    }

    /// <summary>The signals a dongle reads now, in VSS names and units.</summary>
    public Dictionary<string, double> Signals()
    {
        var signals = new Dictionary<string, double>
        {
            [V.Latitude] = Math.Round(Position.Latitude, 6),
            [V.Longitude] = Math.Round(Position.Longitude, 6),
            [V.Altitude] = Math.Round(Altitude, 1),
            [V.Heading] = Math.Round(HeadingDegrees, 1),
            [V.Speed] = Math.Round(SpeedKmh, 1),
            [V.Odometer] = Math.Round(OdometerKm, 3),
        };
        if (Electric)
        {
            signals[V.StateOfCharge] = Math.Round(FuelPercent, 1);
            return signals;
        }
        signals[V.EngineSpeed] = Math.Round(EngineRpm);
        signals[V.EngineLoad] = Math.Round(EngineLoadPercent, 1);
        signals[V.CoolantTemperature] = Math.Round(CoolantC);
        signals[V.FuelLevel] = Math.Round(FuelPercent, 1);
        signals[V.FuelRate] = Math.Round(FuelRateLh, 2);
        signals[V.RunTime] = Math.Round(RunTimeS);
        signals[V.AmbientTemperature] = Math.Round(AmbientC);
        return signals;
    }

    /// <summary>Which signals this car's dongle sends as raw mode 01 responses rather than decoded.</summary>
    public static IReadOnlyList<string> RawObdSignals(int seed) => (seed % 3) switch
    {
        0 => [V.EngineSpeed, V.Speed, V.CoolantTemperature, V.EngineLoad],
        1 => [V.EngineSpeed, V.FuelLevel, V.RunTime],
        _ => [],
    };

    /// <summary>Splits signals into the decoded ones and the raw OBD responses carrying the others.</summary>
    public static (Dictionary<string, double> Signals, List<string> Obd) AsDongleSends(Dictionary<string, double> signals, IReadOnlyList<string> raw)
    {
        var obd = new List<string>();
        foreach (var name in raw)
        {
            if (!signals.Remove(name, out var value) || !ObdCodec.CanEncode(name)) continue;
            obd.Add(ObdCodec.Encode(name, value));
        }
        return (signals, obd);
    }
}
