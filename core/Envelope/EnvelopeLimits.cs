namespace Pipeline.Core.Envelope;

/// <summary>Hard limits on what a device may send; anything over them is refused with reason too_large.</summary>
public sealed record EnvelopeLimits
{
    public static EnvelopeLimits Default { get; } = new();

    /// <summary>Bytes of one envelope's JSON text (payload and signature together).</summary>
    public int MaxReadingBytes { get; init; } = 16 * 1024;
    public int MaxBatchReadings { get; init; } = 1_000;
    public int MaxBatchBytes { get; init; } = 4 * 1024 * 1024;
    public int MaxSignals { get; init; } = 64;
    public int MaxObdResponses { get; init; } = 32;
    /// <summary>Characters of any string in a payload: signal names, OBD hex, timestamps.</summary>
    public int MaxStringLength { get; init; } = 96;
    /// <summary>JSON nesting: an array of envelopes is 2 deep, a payload's signals 2 deep.</summary>
    public int MaxDepth { get; init; } = 4;
}
