using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Pipeline.Marketplace.Query;
using Pipeline.Marketplace.Sandbox;

namespace Pipeline.Marketplace.Catalog;

/// <summary>A dataset's free preview (its newest rows as JSON) and the lake checkpoint it was read at.</summary>
public sealed record DatasetPreview(long LakeCheckpoint, byte[] Json);

/// <summary>
/// The free previews, read through the sandbox like any query. A read opens DuckDB over the lake's files and took most
/// of the dataset page's render while a fleet sends (the checkpoint moves every second, so caching by checkpoint alone
/// would rarely hit): like the catalog, the last preview is answered while one re-read runs behind it, at most once per
/// <c>Marketplace:CatalogRefresh</c>, and only when the checkpoint moved.
/// </summary>
public sealed class DatasetPreviews
{
    private readonly Dictionary<string, StaleWhileRevalidate<DatasetPreview>> _previews;

    public DatasetPreviews(MarketLake lake, TimeProvider clock, IOptions<MarketplaceOptions> options, ILogger<DatasetPreviews> logger) =>
        _previews = MarketDatasets.All.ToDictionary(d => d.Name, d => new StaleWhileRevalidate<DatasetPreview>(
            previous => ReadAsync(lake, d, options.Value, previous), options.Value.CatalogRefresh, clock, logger));

    public Task<DatasetPreview> GetAsync(MarketDataset dataset, CancellationToken cancellation) => _previews[dataset.Name].GetAsync(cancellation);

    private static async Task<DatasetPreview> ReadAsync(MarketLake lake, MarketDataset dataset, MarketplaceOptions options, DatasetPreview? previous)
    {
        var snapshot = await lake.SnapshotAsync(CancellationToken.None);
        if (previous?.LakeCheckpoint == snapshot.Checkpoint) return previous;
        var table = new GrantedTable(dataset.Name, dataset.Shape, snapshot.PathsOf(dataset.Name), new RowRestriction(DateTimeOffset.UnixEpoch, null));
        using var sandbox = SqlSandbox.Open([table], GrantedQueries.Limits(options));
        using var content = new MemoryStream();
        await sandbox.RunAsync($"SELECT * FROM {dataset.Name} ORDER BY event_seq DESC LIMIT {MarketplaceEndpoints.PreviewRows}", ResultFormat.Json, content,
            MarketplaceEndpoints.PreviewRows, snapshot.Checkpoint, CancellationToken.None);
        return new DatasetPreview(snapshot.Checkpoint, content.ToArray());
    }
}
