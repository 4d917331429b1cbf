namespace Pipeline.Registry;

/// <summary>
/// What one client may ask of the registry, bound from "Registry:Limits". Every registration costs each processor
/// memory for good (it holds every device), so writes are bounded per client address before anything is parsed.
/// </summary>
public sealed class RegistryLimits
{
    public const string Section = "Registry:Limits";

    /// <summary>
    /// Largest request body of a registration or transfer, refused 413 before it is read. The typed data may be 4,096
    /// bytes as sent and two signatures follow, so 16 KiB fits any real request with room for a writer's whitespace.
    /// </summary>
    public int MaxBodyBytes { get; set; } = 16 * 1024;

    /// <summary>Registrations and transfers per second from one client address, sustained, and the burst above it.</summary>
    public int ClientWritesPerSecond { get; set; } = 20;
    public int ClientWriteBurst { get; set; } = 200;
}
