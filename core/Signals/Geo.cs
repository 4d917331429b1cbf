namespace Pipeline.Core.Signals;

/// <summary>A point on the WGS84 sphere, in degrees.</summary>
public readonly record struct GeoPoint(double Latitude, double Longitude);

/// <summary>Great-circle geometry on a sphere of the Earth's mean radius: enough for trips of a few hundred km.</summary>
public static class Geo
{
    public const double EarthRadiusKm = 6371.0088;

    public static double DistanceKm(GeoPoint a, GeoPoint b)
    {
        var dLat = Radians(b.Latitude - a.Latitude);
        var dLon = Radians(b.Longitude - a.Longitude);
        var h = Math.Sin(dLat / 2) * Math.Sin(dLat / 2) + Math.Cos(Radians(a.Latitude)) * Math.Cos(Radians(b.Latitude)) * Math.Sin(dLon / 2) * Math.Sin(dLon / 2);
        return 2 * EarthRadiusKm * Math.Asin(Math.Min(1, Math.Sqrt(h)));
    }

    /// <summary>Initial bearing from a to b, degrees clockwise from north in [0, 360).</summary>
    public static double BearingDegrees(GeoPoint a, GeoPoint b)
    {
        var φ1 = Radians(a.Latitude);
        var φ2 = Radians(b.Latitude);
        var Δλ = Radians(b.Longitude - a.Longitude);
        var y = Math.Sin(Δλ) * Math.Cos(φ2);
        var x = Math.Cos(φ1) * Math.Sin(φ2) - Math.Sin(φ1) * Math.Cos(φ2) * Math.Cos(Δλ);
        return (Degrees(Math.Atan2(y, x)) + 360) % 360;
    }

    /// <summary>The point reached going <paramref name="distanceKm"/> from <paramref name="start"/> on a bearing.</summary>
    public static GeoPoint Destination(GeoPoint start, double bearingDegrees, double distanceKm)
    {
        var δ = distanceKm / EarthRadiusKm;
        var θ = Radians(bearingDegrees);
        var φ1 = Radians(start.Latitude);
        var λ1 = Radians(start.Longitude);
        var φ2 = Math.Asin(Math.Sin(φ1) * Math.Cos(δ) + Math.Cos(φ1) * Math.Sin(δ) * Math.Cos(θ));
        var λ2 = λ1 + Math.Atan2(Math.Sin(θ) * Math.Sin(δ) * Math.Cos(φ1), Math.Cos(δ) - Math.Sin(φ1) * Math.Sin(φ2));
        return new GeoPoint(Degrees(φ2), (Degrees(λ2) + 540) % 360 - 180);
    }

    public static double Radians(double degrees) => degrees * Math.PI / 180;
    public static double Degrees(double radians) => radians * 180 / Math.PI;
}
