using System.Globalization;
using Pipeline.Core.Envelope;

namespace Pipeline.Core.Signals;

/// <summary>The limits a reading must keep to be believed; bound from the processors' configuration.</summary>
public sealed record PlausibilityLimits
{
    public static PlausibilityLimits Default { get; } = new();

    /// <summary>How far ahead of the receive time a device clock may run (clock drift, not the future).</summary>
    public TimeSpan MaxAhead { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>How old a reading may be when received: devices buffer while offline and upload later.</summary>
    public TimeSpan MaxAge { get; init; } = TimeSpan.FromDays(7);

    /// <summary>Fastest ground speed two consecutive fixes of one vehicle may imply.</summary>
    public double MaxImpliedSpeedKmh { get; init; } = 300;

    /// <summary>Fixes closer than this in distance are never a teleport (GPS jitter when readings are close in time).</summary>
    public double TeleportToleranceKm { get; init; } = 0.5;
}

/// <summary>A vehicle's last accepted position, the reference for the next fix.</summary>
public readonly record struct Fix(double Latitude, double Longitude, DateTimeOffset DeviceTime);

/// <summary>
/// Turns a payload into the signals it states — its decoded values plus its raw OBD-II responses decoded with the
/// SAE J1979 formulas — and checks them against the catalog: pure functions of the reading and the limits.
/// </summary>
public static class Plausibility
{
    /// <summary>The reading's signals in catalog names and units: raw OBD responses decode into (and win over) stated values.</summary>
    public static (Dictionary<string, double>? Signals, Rejection? Rejection) Decode(ReadingPayload payload)
    {
        var signals = new Dictionary<string, double>(payload.Signals.Count + payload.Obd.Count, StringComparer.Ordinal);
        foreach (var (name, value) in payload.Signals) signals[name] = value;
        foreach (var response in payload.Obd)
        {
            if (!ObdCodec.TryDecode(response, out var signal, out var value, out var rejection)) return (null, rejection);
            signals[signal] = value;
        }
        return (signals, null);
    }

    /// <summary>Every signal must be in the catalog for the device's kind and inside its physical range.</summary>
    public static Rejection? CheckSignals(DeviceKind kind, IReadOnlyDictionary<string, double> signals)
    {
        foreach (var (name, value) in signals)
        {
            if (!SignalCatalog.TryGet(name, out var definition) || definition.Kind != kind)
                return new Rejection(ReasonCode.UnknownSignal, $"'{name}' is not a {kind.ToWire()} signal; see the signal catalog.");
            if (value < definition.Min || value > definition.Max)
                return new Rejection(ReasonCode.OutOfRange, $"{name} = {value.ToString(CultureInfo.InvariantCulture)} {definition.Unit} is outside [{definition.Min.ToString(CultureInfo.InvariantCulture)}, {definition.Max.ToString(CultureInfo.InvariantCulture)}].");
        }
        return null;
    }

    /// <summary>The device clock against the time the edge received the reading.</summary>
    public static Rejection? CheckTime(DateTimeOffset deviceTime, DateTimeOffset receivedAt, PlausibilityLimits limits)
    {
        if (deviceTime > receivedAt + limits.MaxAhead)
            return new Rejection(ReasonCode.Future, $"Device time {deviceTime:O} is {(deviceTime - receivedAt).TotalMinutes:F0} min ahead of the receive time; fix the device clock.");
        if (deviceTime < receivedAt - limits.MaxAge)
            return new Rejection(ReasonCode.Stale, $"Device time {deviceTime:O} is {(receivedAt - deviceTime).TotalDays:F1} days before the receive time; readings older than {limits.MaxAge.TotalDays:F0} days are not taken.");
        return null;
    }

    /// <summary>The fix, if the reading has one (both coordinates).</summary>
    public static Fix? FixOf(IReadOnlyDictionary<string, double> signals, DateTimeOffset deviceTime) =>
        signals.TryGetValue(SignalCatalog.Vehicle.Latitude, out var lat) && signals.TryGetValue(SignalCatalog.Vehicle.Longitude, out var lon)
            ? new Fix(lat, lon, deviceTime)
            : null;

    /// <summary>A fix that the vehicle could not have reached from its last one in the time between them.</summary>
    public static Rejection? CheckMovement(Fix? previous, Fix current, PlausibilityLimits limits)
    {
        if (previous is not { } last) return null;
        var km = Geo.DistanceKm(new GeoPoint(last.Latitude, last.Longitude), new GeoPoint(current.Latitude, current.Longitude));
        if (km <= limits.TeleportToleranceKm) return null;
        var hours = Math.Abs((current.DeviceTime - last.DeviceTime).TotalHours);
        var speed = hours == 0 ? double.PositiveInfinity : km / hours;
        return speed <= limits.MaxImpliedSpeedKmh
            ? null
            : new Rejection(ReasonCode.Teleport, $"{km:F1} km from the previous fix in {hours * 3600:F0} s implies {speed:F0} km/h (limit {limits.MaxImpliedSpeedKmh:F0}).");
    }
}
