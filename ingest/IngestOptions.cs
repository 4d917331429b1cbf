using Pipeline.Core.Envelope;

namespace Pipeline.Ingest;

/// <summary>The edge's limits and policies, bound from the "Ingest" section.</summary>
public sealed class IngestOptions
{
    public const string Section = "Ingest";

    public EnvelopeLimits Limits { get; set; } = EnvelopeLimits.Default;

    /// <summary>Recover the signer at the edge and refuse readings not signed by their device, to shed spam early.
    /// Off by default: the processors check every signature anyway, and at the edge it costs about half of the
    /// throughput (./depin bench ingest). Turn it on when forgeries flood the broker.</summary>
    public bool VerifySignatures { get; set; }

    /// <summary>Bytes handed to the producer and not yet acknowledged; past this, requests get 503 instead of queueing.</summary>
    public long MaxInFlightBytes { get; set; } = 64L * 1024 * 1024;

    /// <summary>How long a request waits for the broker's acknowledgement before it gets 503 (MQTT: disconnect).</summary>
    public TimeSpan AckTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Retry-After on 503 and 429.</summary>
    public int RetryAfterSeconds { get; set; } = 2;

    /// <summary>Sustained readings per second one device may send, and the burst above it.</summary>
    public int DeviceReadingsPerSecond { get; set; } = 50;
    public int DeviceBurst { get; set; } = 1_000;

    /// <summary>
    /// Readings the edge remembers having got acknowledged, to answer a replay "duplicate" without producing it again or
    /// spending its device's rate: at most this many (about 28 bytes each), each for at most RecentWindow.
    /// </summary>
    public int RecentReadings { get; set; } = 1_000_000;
    public TimeSpan RecentWindow { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Sustained requests per second from one client address (HTTP) or client id (MQTT), and the burst.</summary>
    public int ClientRequestsPerSecond { get; set; } = 500;
    public int ClientBurst { get; set; } = 1_000;
}
