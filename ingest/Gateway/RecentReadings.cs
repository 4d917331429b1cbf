using System.Buffers.Binary;
using System.Globalization;
using Pipeline.Core.Envelope;

namespace Pipeline.Ingest.Gateway;

/// <summary>
/// The readings this edge recently got acknowledged by the broker, so a replay is answered "duplicate" without being
/// produced again or spending its device's rate. Bounded in entries and in age: each shard keeps two generations of
/// at most a fraction of the capacity; a generation turns over when full or half a window old, so an entry is
/// forgotten at most one window after it was added. Turning over clears and reuses the older set: nothing is allocated
/// in steady state.
/// </summary>
public sealed class RecentReadings(int capacity, TimeSpan window, TimeProvider clock)
{
    private const int ShardCount = 16;
    private readonly Shard[] _shards = Enumerable.Range(0, ShardCount).Select(_ => new Shard(Math.Max(1, capacity / ShardCount / 2), window / 2, clock)).ToArray();

    /// <summary>
    /// What identifies a reading as sent: 64 bits of its id and 64 bits of its signature's r. The signature is part of
    /// it because unverified readings enter this set too: a stranger who guesses a payload and sends it first with a
    /// made-up signature must not make the device's own copy look like a replay. Replaying the device's own bytes, in
    /// any envelope spelling or with v as 0/1 or 27/28, gives the same key.
    /// </summary>
    public static UInt128 KeyOf(SignedReading reading) => new(
        ulong.Parse(reading.Id.AsSpan(2, 16), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture),
        BinaryPrimitives.ReadUInt64BigEndian(reading.Signature));

    public bool Contains(UInt128 key) => ShardOf(key).Contains(key);

    /// <summary>Remembers a reading the broker acknowledged.</summary>
    public void Add(UInt128 key) => ShardOf(key).Add(key);

    public int Count => _shards.Sum(s => s.Count);

    private Shard ShardOf(UInt128 key) => _shards[(int)((ulong)key % ShardCount)];

    private sealed class Shard(int generationCapacity, TimeSpan generationAge, TimeProvider clock)
    {
        private readonly Lock _lock = new();
        private HashSet<UInt128> _current = [];
        private HashSet<UInt128> _previous = [];
        private DateTimeOffset _started = clock.GetUtcNow();

        public int Count
        {
            get
            {
                lock (_lock) return _current.Count + _previous.Count;
            }
        }

        public bool Contains(UInt128 key)
        {
            lock (_lock)
            {
                TurnOver(full: false);
                return _current.Contains(key) || _previous.Contains(key);
            }
        }

        public void Add(UInt128 key)
        {
            lock (_lock)
            {
                TurnOver(full: _current.Count >= generationCapacity);
                _current.Add(key);
            }
        }

        private void TurnOver(bool full)
        {
            var now = clock.GetUtcNow();
            var age = now - _started;
            if (age >= 2 * generationAge)
            {
                // Both generations are older than the window.
                _previous.Clear();
                _current.Clear();
                _started = now;
            }
            else if (full || age >= generationAge)
            {
                _previous.Clear();
                (_previous, _current) = (_current, _previous);
                _started = now;
            }
        }
    }
}
