namespace Pipeline.Marketplace;

/// <summary>The marketplace's settings, bound from the "Marketplace" section.</summary>
public sealed class MarketplaceOptions
{
    public const string Section = "Marketplace";

    /// <summary>Where the operator key's hash is kept; empty: "marketplace/operator-key.sha256" in the data folder.</summary>
    public string? OperatorKeyFile { get; set; }

    /// <summary>The price of a dataset's rows, in credits per 1,000 rows, by dataset; datasets not named cost <see cref="DefaultCreditsPerThousandRows"/>.</summary>
    public Dictionary<string, long> CreditsPerThousandRows { get; set; } = [];
    public long DefaultCreditsPerThousandRows { get; set; } = 10;

    /// <summary>The price of a dataset's bytes delivered, in credits per MB (10⁶ bytes), by dataset; datasets not named cost <see cref="DefaultCreditsPerMegabyte"/>. Paid for a grant's optional byte quota.</summary>
    public Dictionary<string, long> CreditsPerMegabyte { get; set; } = [];
    public long DefaultCreditsPerMegabyte { get; set; } = 1;

    /// <summary>Largest byte quota one grant may have, in MB (per month for a subscription).</summary>
    public long MaxGrantMegabytes { get; set; } = 1_000_000;

    /// <summary>Most rows one grant may cover (per month for a subscription).</summary>
    public long MaxGrantRows { get; set; } = 100_000_000;

    /// <summary>Requests per second (and burst) one key — or, without a key, one client address — may make.</summary>
    public int RequestsPerSecond { get; set; } = 20;
    public int RequestBurst { get; set; } = 40;

    /// <summary>Largest request body (a query's SQL is at most 16 KiB).</summary>
    public long MaxBodyBytes { get; set; } = 64 * 1024;

    /// <summary>The per-query DuckDB limits.</summary>
    public int QueryMemoryLimitMegabytes { get; set; } = 256;
    public int QueryThreads { get; set; } = 1;
    public TimeSpan QueryTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Live feeds: rows per event, events a client may have waiting, how long its buffer may stay full before it is dropped, rows the shared reader takes per round, how often it looks for a new checkpoint, the keep-alive comment's interval, feeds open per key.</summary>
    public int FeedBatchRows { get; set; } = 1_000;
    public int FeedBufferBatches { get; set; } = 16;
    public TimeSpan FeedDropAfter { get; set; } = TimeSpan.FromSeconds(30);
    public int FeedStepRows { get; set; } = 50_000;
    public TimeSpan FeedPollInterval { get; set; } = TimeSpan.FromMilliseconds(500);
    public TimeSpan FeedKeepAlive { get; set; } = TimeSpan.FromSeconds(15);
    public int MaxFeedsPerKey { get; set; } = 4;

    /// <summary>Least time between the end of one catalog recompute and the start of the next (requests meanwhile get the last catalog computed).</summary>
    public TimeSpan CatalogRefresh { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long the replica running an export job may go without a heartbeat (it beats twice a second) before another replica fails the job.</summary>
    public TimeSpan ExportHeartbeatTimeout { get; set; } = TimeSpan.FromSeconds(10);

    public long PriceOf(string dataset) => CreditsPerThousandRows.TryGetValue(dataset, out var price) ? price : DefaultCreditsPerThousandRows;

    public long MegabytePriceOf(string dataset) => CreditsPerMegabyte.TryGetValue(dataset, out var price) ? price : DefaultCreditsPerMegabyte;

    public string ResolveOperatorKeyFile(string dataDirectory) =>
        Path.GetFullPath(string.IsNullOrWhiteSpace(OperatorKeyFile) ? Path.Combine(dataDirectory, "marketplace", "operator-key.sha256") : OperatorKeyFile);

    public IEnumerable<string> Errors()
    {
        if (DefaultCreditsPerThousandRows < 0 || CreditsPerThousandRows.Values.Any(p => p < 0) || DefaultCreditsPerMegabyte < 0 || CreditsPerMegabyte.Values.Any(p => p < 0))
            yield return "Marketplace prices cannot be negative.";
        if (MaxGrantRows < 1 || MaxGrantMegabytes < 1) yield return "Marketplace:MaxGrantRows and MaxGrantMegabytes must be positive.";
        if (RequestsPerSecond < 1 || RequestBurst < 1) yield return "Marketplace:RequestsPerSecond and RequestBurst must be positive.";
        if (MaxBodyBytes < 1024) yield return "Marketplace:MaxBodyBytes must be at least 1024.";
        if (FeedBatchRows < 1 || FeedBufferBatches < 1 || FeedStepRows < FeedBatchRows || MaxFeedsPerKey < 1) yield return "Marketplace:FeedBatchRows, FeedBufferBatches and MaxFeedsPerKey must be positive, FeedStepRows at least FeedBatchRows.";
        if (FeedPollInterval <= TimeSpan.Zero || FeedKeepAlive <= TimeSpan.Zero || FeedDropAfter <= TimeSpan.Zero) yield return "Marketplace:FeedPollInterval, FeedKeepAlive and FeedDropAfter must be positive.";
        if (ExportHeartbeatTimeout < TimeSpan.FromSeconds(1)) yield return "Marketplace:ExportHeartbeatTimeout must be at least a second (the runner beats every 0.5 s).";
        if (CatalogRefresh < TimeSpan.Zero) yield return "Marketplace:CatalogRefresh cannot be negative.";
        if (QueryMemoryLimitMegabytes < 16 || QueryThreads < 1 || QueryTimeout <= TimeSpan.Zero) yield return "Marketplace:QueryMemoryLimitMegabytes must be at least 16, QueryThreads at least 1 and QueryTimeout positive.";
    }
}
