namespace Pipeline.Marketplace.Accounts;

/// <summary>
/// Buyer keys found by their hash in the last <see cref="Lifetime"/>, so that a busy key is looked up in PostgreSQL once
/// per lifetime rather than on every request. A key revoked through this process is dropped at once, and a look-up that
/// began before the revocation cannot put it back; a key revoked through another replica stops working here within
/// <see cref="Lifetime"/>. Only keys that were found and not revoked are kept: a new key works at once, and a stranger's
/// guesses add nothing.
/// </summary>
public sealed class BuyerKeyCache(TimeProvider clock)
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromSeconds(2);
    private const int MaxKeys = 10_000;

    private readonly Dictionary<string, (string BuyerId, string KeyId, DateTimeOffset FoundAt)> _keys = [];
    private readonly Lock _gate = new();
    private long _revocations;

    /// <summary>Revocations seen so far: taken before a look-up and handed to <see cref="Add"/>.</summary>
    public long Revocations
    {
        get { lock (_gate) return _revocations; }
    }

    public bool TryGet(string hash, out string buyerId, out string keyId)
    {
        lock (_gate)
        {
            if (_keys.TryGetValue(hash, out var key) && clock.GetUtcNow() - key.FoundAt < Lifetime)
            {
                (buyerId, keyId) = (key.BuyerId, key.KeyId);
                return true;
            }
        }
        (buyerId, keyId) = ("", "");
        return false;
    }

    /// <summary>Keeps a key found unrevoked by a look-up that began at <paramref name="revocationsBefore"/>, unless a key was revoked since.</summary>
    public void Add(string hash, string buyerId, string keyId, long revocationsBefore)
    {
        lock (_gate)
        {
            if (_revocations != revocationsBefore) return;
            if (_keys.Count >= MaxKeys) _keys.Clear();
            _keys[hash] = (buyerId, keyId, clock.GetUtcNow());
        }
    }

    /// <summary>Called once the revocation is stored.</summary>
    public void Revoked(string hash)
    {
        lock (_gate)
        {
            _revocations++;
            _keys.Remove(hash);
        }
    }
}
