using Pipeline.Marketplace.Accounts;

namespace Pipeline.Tests.Unit.Marketplace;

/// <summary>The API-key look-up cache (issue 13's query speed): revocation on this process wins at once, keys age out.</summary>
public sealed class BuyerKeyCacheTests
{
    private readonly HandClock _clock = new();

    [Fact]
    public void TryGet_AKeyFoundWithinItsLifetime_IsAnsweredWithoutALookUp()
    {
        using var cache = new BuyerKeyCache(_clock);
        cache.Add("hash", "0xbuyer", "key_1", cache.Revocations);
        _clock.Now += BuyerKeyCache.Lifetime - TimeSpan.FromMilliseconds(1);
        Assert.True(cache.TryGet("hash", out var buyer, out var key));
        Assert.Equal(("0xbuyer", "key_1"), (buyer, key));
    }

    [Fact]
    public void TryGet_AfterItsLifetime_MissesSoARevocationElsewhereIsSeen()
    {
        using var cache = new BuyerKeyCache(_clock);
        cache.Add("hash", "0xbuyer", "key_1", cache.Revocations);
        _clock.Now += BuyerKeyCache.Lifetime;
        Assert.False(cache.TryGet("hash", out _, out _));
    }

    [Fact]
    public void Revoked_DropsTheKeyAtOnce()
    {
        using var cache = new BuyerKeyCache(_clock);
        cache.Add("hash", "0xbuyer", "key_1", cache.Revocations);
        cache.Revoked("hash");
        Assert.False(cache.TryGet("hash", out _, out _));
    }

    [Fact]
    public void Add_OfALookUpThatBeganBeforeARevocation_KeepsNothing()
    {
        using var cache = new BuyerKeyCache(_clock);
        var before = cache.Revocations; // the look-up reads the key, unrevoked, from the store …
        cache.Revoked("hash");          // … the revocation is stored and announced …
        cache.Add("hash", "0xbuyer", "key_1", before); // … and the look-up ends.
        Assert.False(cache.TryGet("hash", out _, out _));
        cache.Add("hash", "0xbuyer", "key_1", cache.Revocations);
        Assert.True(cache.TryGet("hash", out _, out _));
    }

    [Fact]
    public void Add_PastCapacity_StaysWithinItAndKeepsMostKeys()
    {
        using var cache = new BuyerKeyCache(_clock);
        var hashes = Enumerable.Range(0, BuyerKeyCache.Capacity + 1).Select(i => $"hash_{i}").ToList();
        foreach (var hash in hashes) cache.Add(hash, "0xbuyer", hash, cache.Revocations);

        var kept = hashes.Count(hash => cache.TryGet(hash, out _, out _));
        Assert.InRange(kept, BuyerKeyCache.Capacity * 8 / 10, BuyerKeyCache.Capacity);
        Assert.True(cache.TryGet(hashes[^1], out _, out var newest));
        Assert.Equal(hashes[^1], newest);
    }

    private sealed class HandClock : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = new(2026, 12, 5, 12, 0, 0, TimeSpan.Zero);
        public override DateTimeOffset GetUtcNow() => Now;
    }
}
