namespace Pipeline.Streams.Processing;

/// <summary>One message of telemetry.raw.v1 as consumed: where it came from, its bytes, and when the edge received it.</summary>
public sealed record RawMessage(string Topic, int Partition, long Offset, string? Key, byte[] Value, DateTimeOffset ReceivedAt);
