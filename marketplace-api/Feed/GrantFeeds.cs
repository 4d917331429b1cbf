using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Pipeline.Core.Events;
using Pipeline.Marketplace.Accounts;
using Pipeline.Marketplace.Attribution;
using Pipeline.Marketplace.Query;
using Pipeline.Marketplace.Sandbox;

namespace Pipeline.Marketplace.Feed;

/// <summary>
/// A subscription grant's live feed over server-sent events. Each batch of rows is charged (FeedCharged, and a SalesAttributed with
/// exactly the rows sent per device and epoch) before it is written, as one event whose id is its position
/// ("checkpoint:event_seq" of its last row); Last-Event-ID resumes right after it. The stream ends with an `end` event
/// naming the reason when the quota is used up or the grant expires, and a client too slow to take its batches is dropped.
/// </summary>
public sealed class GrantFeeds(MarketAccounts accounts, GrantedQueries queries, DeviceMakes makes, LiveFeed feed, Catalog.MarketLake lake, MarketMetrics metrics, IOptions<MarketplaceOptions> options, ILogger<GrantFeeds> logger)
{
    private static readonly TimeSpan MakeRefreshInterval = TimeSpan.FromSeconds(1);
    private readonly ConcurrentDictionary<string, int> _openPerKey = new();

    /// <summary>Refuses (before anything is written) or streams until the client leaves, the grant ends or the client is dropped.</summary>
    public async Task StreamAsync(HttpContext context, string buyerId, string keyId, string grantId, CancellationToken cancellation)
    {
        var now = accounts.Clock.GetUtcNow();
        var account = await accounts.FindAsync(buyerId, cancellation) ?? throw new MarketRefusedException(StatusCodes.Status404NotFound, MarketReason.UnknownBuyer, "The account no longer exists.");
        var grant = GrantedQueries.Usable(account, grantId, now);
        if (!grant.Subscription)
            throw new MarketRefusedException(StatusCodes.Status409Conflict, MarketReason.NotSubscription,
                $"Grant '{grantId}' covers a fixed time range; only a subscription (bought without 'until') has a live feed. Query it with POST /v1/query.");
        var snapshot = await lake.SnapshotAsync(cancellation);
        var position = Resume(context.Request.Headers["Last-Event-ID"].ToString(), snapshot.Checkpoint);
        var table = await queries.TableAsync(grant, snapshot, cancellation);

        var limit = options.Value.MaxFeedsPerKey;
        if (_openPerKey.AddOrUpdate(keyId, 1, (_, open) => open + 1) > limit)
        {
            Release(keyId);
            throw new MarketRefusedException(StatusCodes.Status429TooManyRequests, MarketReason.TooManyFeeds,
                $"This key has {limit} feeds open already; close one, or use one feed per grant.");
        }
        var subscription = feed.Subscribe(grant.Dataset, table.Shape, SqlSandbox.RowCondition(table.Shape, table.Rows), position);
        // A make's devices are those registered with it now: one registered while the feed is open is in it within a
        // moment of this replica hearing of it (its first rows reach the lake seconds after it registers).
        var registryChanged = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
        void Signal() => registryChanged.Writer.TryWrite(true);
        using var following = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        var followingMake = grant.Make is null ? Task.CompletedTask : FollowMakeAsync(grant, snapshot, subscription, registryChanged.Reader, following.Token);
        if (grant.Make is not null) makes.Changed += Signal;
        metrics.FeedOpened();
        try
        {
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellation, subscription.Dropped);
            await RunAsync(context, buyerId, keyId, grantId, subscription, position, snapshot.Checkpoint, stop.Token);
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested || subscription.Dropped.IsCancellationRequested)
        {
            // The client left, or was dropped for not keeping up (its connection is closed: it can resume with Last-Event-ID).
            if (subscription.Dropped.IsCancellationRequested) context.Abort();
        }
        finally
        {
            makes.Changed -= Signal;
            await following.CancelAsync();
            await followingMake.ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            feed.Unsubscribe(subscription);
            metrics.FeedClosed();
            Release(keyId);
        }
    }

    /// <summary>
    /// Looks the make's devices up again when the registry changed, at most once a <see cref="MakeRefreshInterval"/>: a
    /// stranger registering devices by the hundred costs each open feed one lookup a second, shared by the make's feeds.
    /// </summary>
    private async Task FollowMakeAsync(Grant grant, Catalog.LakeSnapshot snapshot, FeedSubscription subscription, ChannelReader<bool> registryChanged, CancellationToken cancellation)
    {
        while (true)
        {
            await registryChanged.ReadAsync(cancellation);
            try
            {
                var table = await queries.TableAsync(grant, snapshot, cancellation);
                subscription.Condition = SqlSandbox.RowCondition(table.Shape, table.Rows);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The feed goes on with the devices it had; the next change looks them up again.
                logger.LogWarning("A live feed of grant {Grant} could not look up the devices of make {Make}: {Message}", grant.Id, grant.Make, e.Message);
            }
            await Task.Delay(MakeRefreshInterval, cancellation);
        }
    }

    private void Release(string keyId) => _openPerKey.AddOrUpdate(keyId, 0, (_, open) => open - 1);

    /// <summary>Where a feed starts: after the Last-Event-ID's row, or at the lake's checkpoint now (new rows only).</summary>
    private static long Resume(string lastEventId, long checkpoint)
    {
        if (lastEventId.Length == 0) return checkpoint;
        var parts = lastEventId.Split(':');
        if (parts.Length == 2 && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var position) && position <= checkpoint) return position;
        throw new MarketRefusedException(StatusCodes.Status400BadRequest, MarketReason.InvalidRequest,
            $"Last-Event-ID '{(lastEventId.Length > 40 ? lastEventId[..40] + "…" : lastEventId)}' is not an event id of this feed (checkpoint:position, at most the lake's checkpoint {checkpoint}); leave it out to start with new rows.");
    }

    private async Task RunAsync(HttpContext context, string buyerId, string keyId, string grantId, FeedSubscription subscription, long position, long checkpoint, CancellationToken cancellation)
    {
        var response = context.Response;
        context.Features.Get<IHttpResponseBodyFeature>()?.DisableBuffering();
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        response.Headers[MarketplaceEndpoints.LakeCheckpointHeader] = checkpoint.ToString(CultureInfo.InvariantCulture);
        await WriteAsync(response, $": grant {grantId} from position {position}\nretry: 2000\n\n", cancellation);

        var keepAlive = options.Value.FeedKeepAlive;
        while (true)
        {
            using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
            wait.CancelAfter(keepAlive);
            FeedBatch batch;
            try
            {
                if (!await subscription.Batches.Reader.WaitToReadAsync(wait.Token)) return; // completed: dropped
                batch = await subscription.Batches.Reader.ReadAsync(cancellation);
            }
            catch (OperationCanceledException) when (!cancellation.IsCancellationRequested)
            {
                // Idle: a comment keeps proxies from closing the connection; the grant may have expired meanwhile.
                if (await EndedAsync(response, buyerId, keyId, grantId, cancellation)) return;
                await WriteAsync(response, ": keep-alive\n\n", cancellation);
                continue;
            }

            try
            {
                var (sent, cut) = await ChargeAsync(buyerId, keyId, grantId, batch, cancellation);
                var rows = batch.Rows.Take(sent);
                var data = "[" + string.Join(",", rows.Select(r => r.Json)) + "]";
                await WriteAsync(response, $"id: {batch.Checkpoint}:{batch.Rows[sent - 1].EventSeq}\nevent: rows\ndata: {data}\n\n", cancellation);
                metrics.FeedSent(sent);
                if (cut is not null)
                {
                    // The rest of the batch would pass the byte quota: the feed ends here rather than skip rows and go on.
                    await EndAsync(response, cut, cancellation);
                    return;
                }
                if (sent < batch.Rows.Count && await EndedAsync(response, buyerId, keyId, grantId, cancellation)) return;
            }
            catch (MarketRefusedException refused)
            {
                await EndAsync(response, refused, cancellation);
                return;
            }
        }
    }

    /// <summary>
    /// Charges as many of the batch's rows as the grant has rows and bytes left (at least one, or it refuses): FeedCharged
    /// and the SalesAttributed of exactly those rows (per device and epoch), in one append. Returns how many rows were charged, and
    /// when the byte quota cut the batch, the refusal that ends the feed after them.
    /// </summary>
    private async Task<(int Sent, MarketRefusedException? Cut)> ChargeAsync(string buyerId, string keyId, string grantId, FeedBatch batch, CancellationToken cancellation)
    {
        var sent = 0;
        MarketRefusedException? cut = null;
        var chargeId = ApiKeys.NewChargeId();
        await accounts.AppendAsync(buyerId, (account, now) =>
        {
            var grant = Usable(account, keyId, grantId, now);
            var (rowsLeft, bytesLeft) = (grant.RowsLeft(now), grant.BytesLeft(now));
            long bytes = 0;
            for (sent = 0; sent < batch.Rows.Count && sent < rowsLeft; sent++)
            {
                var rowBytes = Encoding.UTF8.GetByteCount(batch.Rows[sent].Json);
                if (bytes + rowBytes > bytesLeft) break;
                bytes += rowBytes;
            }
            if (sent < batch.Rows.Count && sent < rowsLeft)
            {
                cut = GrantedQueries.ByteQuotaExceeded(grant, $"The next row is {Encoding.UTF8.GetByteCount(batch.Rows[sent].Json)} bytes and the grant has {bytesLeft - bytes} left; the feed ends before it");
                if (sent == 0) throw cut;
            }
            var rows = batch.Rows.Take(sent).ToList();
            var credits = grant.CreditsFor(now, sent, bytes);
            var shares = rows.GroupBy(r => (r.Device, r.Epoch)).Select(g => new DeviceShare(g.Key.Device, g.Key.Epoch, g.Count())).ToList();
            var charged = new FeedCharged(buyerId, grantId, chargeId, sent, bytes, credits, batch.Checkpoint, now);
            return SalesAttribution.Sale(grant.Dataset, grantId, chargeId, shares, sent, credits) is { } sale ? [charged, sale] : [charged];
        }, cancellation);
        return (sent, cut);
    }

    /// <summary>Ends the stream with the reason when the grant can no longer be read (expired, quota used).</summary>
    private async Task<bool> EndedAsync(HttpResponse response, string buyerId, string keyId, string grantId, CancellationToken cancellation)
    {
        var account = await accounts.FindAsync(buyerId, cancellation);
        try
        {
            if (account is null) throw new MarketRefusedException(StatusCodes.Status404NotFound, MarketReason.UnknownBuyer, "The account no longer exists.");
            Usable(account, keyId, grantId, accounts.Clock.GetUtcNow());
            return false;
        }
        catch (MarketRefusedException refused)
        {
            await EndAsync(response, refused, cancellation);
            return true;
        }
    }

    /// <summary>
    /// The grant, if the feed may go on: as for a query, and the key that opened the feed is not revoked. A feed outlives
    /// its request's authentication by hours, so a revoked (say, leaked) key must not keep one charging the grant.
    /// </summary>
    private static Grant Usable(BuyerAccount account, string keyId, string grantId, DateTimeOffset now)
    {
        if (!account.LiveKeys.Contains(keyId))
            throw new MarketRefusedException(StatusCodes.Status401Unauthorized, MarketReason.RevokedKey, "The API key that opened this feed was revoked; open it again with another key (Last-Event-ID resumes it).");
        return GrantedQueries.Usable(account, grantId, now);
    }

    private static Task EndAsync(HttpResponse response, MarketRefusedException refused, CancellationToken cancellation) =>
        WriteAsync(response, $"event: end\ndata: {JsonSerializer.Serialize(new { reason = refused.Reason, status = refused.Status, detail = refused.Message })}\n\n", cancellation);

    private static async Task WriteAsync(HttpResponse response, string text, CancellationToken cancellation)
    {
        await response.WriteAsync(text, cancellation);
        await response.Body.FlushAsync(cancellation);
    }
}
