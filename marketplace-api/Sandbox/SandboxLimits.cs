namespace Pipeline.Marketplace.Sandbox;

/// <summary>What one query may cost. Every bound is enforced by the sandbox, not advised.</summary>
public sealed record SandboxLimits
{
    /// <summary>SQL text longer than this (UTF-8 bytes) is refused before DuckDB parses it, which bounds parser cost.</summary>
    public int MaxSqlBytes { get; init; } = 16 * 1024;

    /// <summary>Nesting of the parse tree (JSON levels) past which a statement is refused as too complex.</summary>
    public int MaxParseDepth { get; init; } = 256;

    /// <summary>
    /// String literals longer than this are refused, and at most <see cref="MaxConcatenated"/> values may be concatenated
    /// in one query: together they bound how long a row's string can grow (DuckDB allocates scalar strings outside
    /// <c>memory_limit</c>), to about 256 × 2⁸ = 64 KiB per value with the defaults.
    /// </summary>
    public int MaxStringLiteral { get; init; } = 256;
    public int MaxConcatenated { get; init; } = 16;

    public int MemoryLimitMegabytes { get; init; } = 256;
    public int Threads { get; init; } = 1;

    /// <summary>Wall time after which the running statement is interrupted.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Rows and bytes one result may hold, whatever quota the grant has left.</summary>
    public long MaxResultRows { get; init; } = 1_000_000;
    public long MaxResultBytes { get; init; } = 256L * 1024 * 1024;

    public IEnumerable<string> Errors()
    {
        if (MaxSqlBytes < 64) yield return "MaxSqlBytes must be at least 64.";
        if (MaxParseDepth < 32) yield return "MaxParseDepth must be at least 32.";
        if (MemoryLimitMegabytes < 16) yield return "MemoryLimitMegabytes must be at least 16.";
        if (Threads < 1) yield return "Threads must be at least 1.";
        if (Timeout <= TimeSpan.Zero) yield return "Timeout must be positive.";
        if (MaxResultRows < 1 || MaxResultBytes < 1024) yield return "MaxResultRows must be at least 1 and MaxResultBytes at least 1024.";
    }
}
