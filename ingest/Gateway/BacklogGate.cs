using Pipeline.Core.Envelope;

namespace Pipeline.Ingest.Gateway;

/// <summary>
/// What the broker holds that the processors have not processed yet, per partition of the raw topic, against what the
/// broker keeps: the edge refuses readings (503, MQTT "server busy") before an acknowledged one could be evicted
/// unprocessed. Each partition's estimate is this edge's own records since the processors' committed offset, counted as
/// they are acknowledged, plus the records others wrote (or this edge before a restart), at the average record size;
/// <see cref="BacklogMonitor"/> refreshes the offsets in the background, so no request waits for the broker.
/// </summary>
public sealed class BacklogGate
{
    private const long DefaultRecordBytes = 1024;
    private readonly Lock _growing = new();
    private PartitionLog[] _partitions = [];
    private long _deliveredBytes;
    private long _deliveredRecords;
    private volatile bool _known;

    /// <summary>Bytes one partition may hold unprocessed before the edge refuses: the retention less the headroom; null for no limit.</summary>
    public long? LimitBytes { get; private set; }

    /// <summary>What the broker keeps per partition, as learnt at start; null for no limit.</summary>
    public long? RetentionBytes { get; private set; }

    public void SetRetention(long? retentionBytes, double headroom)
    {
        RetentionBytes = retentionBytes;
        LimitBytes = retentionBytes is { } retention ? (long)(retention * (1 - headroom)) : null;
    }

    /// <summary>A record of <paramref name="bytes"/> the broker acknowledged at this offset.</summary>
    public void Delivered(int partition, long offset, long bytes)
    {
        Interlocked.Add(ref _deliveredBytes, bytes);
        Interlocked.Increment(ref _deliveredRecords);
        // A broker that keeps everything needs no record of where each one landed, however long the processors are away:
        // its backlog is estimated from the offsets alone.
        if (LimitBytes is not null) Partition(partition).Delivered(offset, bytes);
    }

    /// <summary>
    /// The offsets as the broker reported them: where the processors are (committed, -1 for none yet), the oldest offset
    /// still kept (low) and the next to be written (high).
    /// </summary>
    public void Refresh(int partition, long committed, long low, long high)
    {
        var recordBytes = Interlocked.Read(ref _deliveredRecords) is var records and > 0 ? Interlocked.Read(ref _deliveredBytes) / records : DefaultRecordBytes;
        Partition(partition).Refresh(Math.Max(committed, low), high, recordBytes);
    }

    /// <summary>The offsets of every partition have been read once: until then the edge cannot tell and refuses.</summary>
    public void MarkKnown() => _known = true;

    /// <summary>Estimated unprocessed bytes of each partition.</summary>
    public IEnumerable<(int Partition, long Bytes)> Backlog()
    {
        var partitions = _partitions;
        for (var i = 0; i < partitions.Length; i++) yield return (i, partitions[i].Estimate);
    }

    /// <summary>
    /// Whether readings of which <paramref name="inFlightBytes"/> (this request's included) are on their way may be taken
    /// now: they could all land in the fullest partition. Null when they may; otherwise why not.
    /// </summary>
    public Rejection? Check(long inFlightBytes, long requestBytes)
    {
        if (!_known) return new Rejection(ReasonCode.Unavailable, "The edge has not yet read the processors' progress from the broker; retry shortly.");
        if (LimitBytes is not { } limit) return null;
        if (requestBytes > limit)
            return new Rejection(ReasonCode.TooLarge, $"This request's {requestBytes} bytes could never fit: the broker keeps {RetentionBytes} bytes per partition and the edge fills at most {limit} of them; send fewer readings at a time.");
        var (fullest, bytes) = (-1, 0L);
        var partitions = _partitions;
        for (var i = 0; i < partitions.Length; i++)
        {
            var estimate = partitions[i].Estimate;
            if (estimate > bytes) (fullest, bytes) = (i, estimate);
        }
        return bytes + inFlightBytes <= limit
            ? null
            : new Rejection(ReasonCode.Unavailable, $"The processors are behind: partition {fullest} holds about {bytes:N0} bytes they have not processed, and the broker keeps {RetentionBytes:N0} per partition; nothing was acknowledged, send again later.");
    }

    private PartitionLog Partition(int partition)
    {
        var partitions = _partitions;
        if (partition < partitions.Length) return partitions[partition];
        lock (_growing)
        {
            if (partition >= _partitions.Length)
            {
                var grown = new PartitionLog[partition + 1];
                _partitions.CopyTo(grown, 0);
                for (var i = _partitions.Length; i < grown.Length; i++) grown[i] = new PartitionLog();
                _partitions = grown;
            }
            return _partitions[partition];
        }
    }

    /// <summary>
    /// One partition: this edge's acknowledged records from the processors' offset on, in chunks of consecutive ones
    /// (last offset, count, bytes), so memory grows with the backlog / 64, and an estimate of everyone else's.
    /// </summary>
    private sealed class PartitionLog
    {
        private const int ChunkRecords = 64;
        private readonly Lock _lock = new();
        private readonly Queue<Chunk> _chunks = new();
        private Chunk _tail;
        private long _ownBytes;
        private long _ownRecords;
        private long _othersBytes;

        public long Estimate => Volatile.Read(ref _ownBytes) + Volatile.Read(ref _othersBytes);

        public void Delivered(long offset, long bytes)
        {
            lock (_lock)
            {
                if (_tail.Records == ChunkRecords)
                {
                    _chunks.Enqueue(_tail);
                    _tail = default;
                }
                _tail = new Chunk(Math.Max(_tail.Last, offset), _tail.Records + 1, _tail.Bytes + bytes);
                _ownRecords++;
                Volatile.Write(ref _ownBytes, _ownBytes + bytes);
            }
        }

        public void Refresh(long processed, long high, long recordBytes)
        {
            lock (_lock)
            {
                // Chunks wholly before the processors' offset are done; one that straddles it is kept whole (over, never under).
                while (_chunks.TryPeek(out var oldest) && oldest.Last < processed) Forget(_chunks.Dequeue());
                if (_chunks.Count == 0 && _tail.Records > 0 && _tail.Last < processed)
                {
                    Forget(_tail);
                    _tail = default;
                }
                var others = Math.Max(0, high - processed - _ownRecords);
                Volatile.Write(ref _othersBytes, others * recordBytes);
            }
        }

        private void Forget(Chunk chunk)
        {
            _ownRecords -= chunk.Records;
            Volatile.Write(ref _ownBytes, _ownBytes - chunk.Bytes);
        }

        private readonly record struct Chunk(long Last, int Records, long Bytes);
    }
}
