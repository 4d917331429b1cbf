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

    /// <summary>
    /// Bytes handed to the producer and not yet acknowledged (each reading counted as its envelope and 256 bytes of key,
    /// headers and framing); past this, requests get 503 instead of queueing.
    /// </summary>
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

    /// <summary>
    /// Sustained requests per second, and the burst: HTTP requests and MQTT connection attempts per client address; MQTT
    /// publishes per authenticated device.
    /// </summary>
    public int ClientRequestsPerSecond { get; set; } = 500;
    public int ClientBurst { get; set; } = 1_000;

    public MqttLimits Mqtt { get; set; } = new();

    public BacklogOptions Backlog { get; set; } = new();
}

/// <summary>How the edge keeps acknowledged readings from being evicted before the processors had them, bound from "Ingest:Backlog".</summary>
public sealed class BacklogOptions
{
    /// <summary>The processors' consumer group; by default the one Streams:GroupId names.</summary>
    public string GroupId { get; set; } = "depin-streams";

    /// <summary>
    /// Bytes the broker keeps per partition of the raw topic. Unset: the embedded broker's fixed 5 MiB, or real Kafka's
    /// retention.bytes; negative: no limit. Time-based retention (retention.ms) is not watched.
    /// </summary>
    public long? RetentionBytes { get; set; }

    /// <summary>
    /// The share of the retention the edge never fills, for what the estimate cannot see: records it did not write
    /// (counted at its average size) and readings in flight from another edge.
    /// </summary>
    public double Headroom { get; set; } = 0.25;

    /// <summary>How often the processors' offsets and the watermarks are read.</summary>
    public TimeSpan RefreshInterval { get; set; } = TimeSpan.FromMilliseconds(500);
}

/// <summary>The MQTT endpoint's own limits, bound from "Ingest:Mqtt".</summary>
public sealed class MqttLimits
{
    /// <summary>
    /// Largest MQTT packet after CONNECT, refused by closing the connection before it is buffered (MQTTnet allocates a
    /// packet's declared length at once and has no limit of its own). MQTT 5 clients learn it from the CONNACK. Larger
    /// batches go over HTTP.
    /// </summary>
    public int MaxPacketBytes { get; set; } = 64 * 1024;

    /// <summary>Largest first packet (the CONNECT), checked before anyone is authenticated.</summary>
    public int MaxConnectBytes { get; set; } = 4 * 1024;

    /// <summary>
    /// Open connections from one client address, each holding at most one packet buffer: 64 MiB at worst. Generous,
    /// because a fleet behind one NAT shares an address.
    /// </summary>
    public int ConnectionsPerAddress { get; set; } = 1_024;

    /// <summary>How far a login's time may be from the server's clock; a login is refused a second time within it.</summary>
    public TimeSpan LoginWindow { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Logins remembered to refuse their reuse; past this many within one window, connections are refused "server busy".</summary>
    public int RememberedLogins { get; set; } = 100_000;
}
