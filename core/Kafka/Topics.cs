namespace Pipeline.Core.Kafka;

/// <summary>Topic names and message headers: the contract between ingest, the processors and dead-letter readers.</summary>
public static class Topics
{
    /// <summary>Signed envelopes as received. Key: device address in lower-case hex; value: the envelope JSON.</summary>
    public const string Raw = "telemetry.raw.v1";

    /// <summary>Refused readings. Value: the original bytes; headers: reason, detail and where the bytes came from.</summary>
    public const string Rejected = "telemetry.rejected.v1";

    public static IReadOnlyList<string> All { get; } = [Raw, Rejected];
}

public static class HeaderNames
{
    /// <summary>When the edge received the reading: Unix milliseconds, decimal ASCII.</summary>
    public const string ReceivedAt = "received-at";
    /// <summary>"http" or "mqtt".</summary>
    public const string Transport = "transport";
    /// <summary>On rejected records: the reason code's wire name.</summary>
    public const string Reason = "reason";
    /// <summary>On rejected records: a sentence saying what was wrong.</summary>
    public const string Detail = "detail";
    /// <summary>On rejected records: "topic/partition/offset" of the source message.</summary>
    public const string Source = "source";
}
