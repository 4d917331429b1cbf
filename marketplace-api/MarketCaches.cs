using Microsoft.Extensions.Caching.Memory;
using Microsoft.Extensions.Internal;

namespace Pipeline.Marketplace;

/// <summary>The marketplace's in-process caches: bounded by entry count (each entry has size 1), aged by the given clock.</summary>
internal static class MarketCaches
{
    public static MemoryCache Create(TimeProvider clock, int capacity) =>
        new(new MemoryCacheOptions { Clock = new TimeProviderClock(clock), SizeLimit = capacity });

    /// <summary>MemoryCache still takes its own clock interface, not a <see cref="TimeProvider"/>.</summary>
    private sealed class TimeProviderClock(TimeProvider clock) : ISystemClock
    {
        public DateTimeOffset UtcNow => clock.GetUtcNow();
    }
}
