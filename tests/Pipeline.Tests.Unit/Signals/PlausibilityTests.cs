using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Core.Signals;
using V = Pipeline.Core.Signals.SignalCatalog.Vehicle;
using W = Pipeline.Core.Signals.SignalCatalog.Weather;

namespace Pipeline.Tests.Unit.Signals;

public sealed class PlausibilityTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 23, 19, 0, 0, TimeSpan.Zero);
    private static readonly PlausibilityLimits Limits = PlausibilityLimits.Default;

    [Theory]
    [InlineData(V.Speed, 0, null)]
    [InlineData(V.Speed, 300, null)]
    [InlineData(V.Speed, 300.1, ReasonCode.OutOfRange)]
    [InlineData(V.Speed, -1, ReasonCode.OutOfRange)]
    [InlineData(V.CoolantTemperature, 199, ReasonCode.OutOfRange)]     // a Car Scanner start-up glitch
    [InlineData(V.EngineSpeed, 15_308, ReasonCode.OutOfRange)]         // likewise
    [InlineData(V.Latitude, 91, ReasonCode.OutOfRange)]
    [InlineData(W.Temperature, 20, ReasonCode.UnknownSignal)]          // a weather signal on a vehicle
    [InlineData("Vehicle.Made.Up", 1, ReasonCode.UnknownSignal)]
    public void CheckSignals_Vehicle(string name, double value, ReasonCode? expected)
    {
        Assert.Equal(expected, Plausibility.CheckSignals(DeviceKind.Vehicle, new Dictionary<string, double> { [name] = value })?.Code);
    }

    [Theory]
    [InlineData(W.WindSpeed, 468.66, ReasonCode.OutOfRange)]           // EWR 2013-02-12: 1048 mph
    [InlineData(W.WindSpeed, 30.35, null)]                             // Roches Point in Ophelia: 59 kn
    [InlineData(W.Pressure, 775, null)]                                // station pressure at 2,317 m (SURFRAD Alamosa)
    [InlineData(W.Humidity, 100.5, ReasonCode.OutOfRange)]
    [InlineData(W.SolarIrradiance, -3.2, null)]                        // pyranometers read slightly negative at night
    [InlineData(W.SolarIrradiance, -80, ReasonCode.OutOfRange)]
    [InlineData(V.Speed, 10, ReasonCode.UnknownSignal)]
    public void CheckSignals_Weather(string name, double value, ReasonCode? expected)
    {
        Assert.Equal(expected, Plausibility.CheckSignals(DeviceKind.Weather, new Dictionary<string, double> { [name] = value })?.Code);
    }

    [Theory]
    [InlineData(0, null)]
    [InlineData(119, null)]             // drift within two minutes
    [InlineData(121, ReasonCode.Future)]
    [InlineData(-6 * 86_400, null)]     // buffered for six days, uploaded now
    [InlineData(-8 * 86_400, ReasonCode.Stale)]
    public void CheckTime_AgainstTheReceiveTime(int offsetSeconds, ReasonCode? expected)
    {
        Assert.Equal(expected, Plausibility.CheckTime(Now.AddSeconds(offsetSeconds), Now, Limits)?.Code);
    }

    [Theory]
    [InlineData(0.0, 10, null)]            // no movement
    [InlineData(0.3, 1, null)]             // within GPS jitter tolerance, however short the interval
    [InlineData(1.0, 30, null)]            // 1 km in 30 s = 120 km/h
    [InlineData(3.0, 30, ReasonCode.Teleport)]  // 360 km/h
    [InlineData(500, 3600, ReasonCode.Teleport)]
    [InlineData(500, 7200, null)]          // 250 km/h over two hours: a fast motorway day, not a teleport
    public void CheckMovement_ImpliedSpeed(double km, double seconds, ReasonCode? expected)
    {
        var from = new GeoPoint(52.37, 4.89);
        var to = Geo.Destination(from, 45, km);
        var previous = new Fix(from.Latitude, from.Longitude, Now);
        var current = new Fix(to.Latitude, to.Longitude, Now.AddSeconds(seconds));
        Assert.Equal(expected, Plausibility.CheckMovement(previous, current, Limits)?.Code);
        Assert.Null(Plausibility.CheckMovement(null, current, Limits));
    }

    [Fact]
    public void Decode_RawObdWinsOverAStatedValue_AndUnknownPidsAreRefused()
    {
        var device = EthKey.FromSeed("plausibility"u8).Address;
        var payload = new ReadingPayload(device, 1, Now, DeviceKind.Vehicle, new Dictionary<string, double> { [V.Speed] = 99, [V.Latitude] = 52 }, ["410D32", "410C1AF8"]);
        var (signals, rejection) = Plausibility.Decode(payload);
        Assert.Null(rejection);
        Assert.Equal(50, signals![V.Speed]);
        Assert.Equal(1726, signals[V.EngineSpeed]);
        Assert.Equal(52, signals[V.Latitude]);

        Assert.Equal(ReasonCode.UnsupportedPid, Plausibility.Decode(payload with { Obd = ["41FF00"] }).Rejection?.Code);
    }
}
