using Pipeline.Core.Crypto;

namespace Pipeline.Ingest.Mqtt;

/// <summary>
/// The MQTT logins used within their window, so one seen on the wire (MQTT here is plain TCP) cannot be used again.
/// Bounded: expired logins are dropped when the set fills; if it is still full, new logins are refused rather than an
/// unexpired one forgotten.
/// </summary>
internal sealed class UsedLogins(int capacity, TimeSpan window)
{
    public enum Outcome { Fresh, Reused, Full }

    private readonly Lock _lock = new();
    private readonly Dictionary<(EthAddress Device, long Time, string ClientId), long> _expiries = [];

    public Outcome TryUse(VerifiedLogin login, string clientId, DateTimeOffset now)
    {
        var nowMs = now.ToUnixTimeMilliseconds();
        lock (_lock)
        {
            if (_expiries.TryGetValue((login.Device, login.UnixMilliseconds, clientId), out var expiry) && expiry >= nowMs) return Outcome.Reused;
            if (_expiries.Count >= capacity)
            {
                foreach (var (key, expires) in _expiries)
                {
                    if (expires < nowMs) _expiries.Remove(key);
                }
                if (_expiries.Count >= capacity) return Outcome.Full;
            }
            // Past this the login's time is outside the window, so it is refused as stale anyway.
            _expiries[(login.Device, login.UnixMilliseconds, clientId)] = login.UnixMilliseconds + (long)window.TotalMilliseconds;
            return Outcome.Fresh;
        }
    }
}
