using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Pipeline.Infra.Hosting;
using Pipeline.Marketplace.Accounts;
using Pipeline.Marketplace.Catalog;
using Pipeline.Marketplace.Contributors;
using Pipeline.Marketplace.ExportJobs;
using Pipeline.Marketplace.Exports;
using System.Text.Json;
using Pipeline.Marketplace.Grants;
using Pipeline.Marketplace.Query;
using Pipeline.Marketplace.Sandbox;

namespace Pipeline.Marketplace;

public sealed record CreateBuyerRequest(string? Name, long? Credits);
public sealed record AddCreditsRequest(long? Credits, string? Note);
public sealed record IssueKeyRequest(string? Label);
public sealed record QueryRequest(string? Grant, string? Sql, string? Format, long? AsOf = null);
public sealed record ExportRequestBody(string? Grant, int? Shards);
public sealed record ChallengeRequest(string? Address);
public sealed record LoginRequest(string? Message, string? Signature);
public sealed record LoggedOut(int Sessions);
public sealed record MarketplaceDescription(string Signer, IReadOnlyList<string> Formats, int PreviewRows);

public sealed record KeyView(string Id, string Label, DateTimeOffset IssuedAt, DateTimeOffset? RevokedAt);
public sealed record IssuedKey(KeyView Key, string ApiKey);
public sealed record GrantView(
    string Id, string Dataset, DateTimeOffset From, DateTimeOffset? Until, BoundingBox? Box, IReadOnlyList<string>? Devices, string? Make,
    bool Subscription, long RowQuota, long RowsUsed, long RowsLeft, DateTimeOffset ExpiresAt, long Credits, long CreditsUsed, DateTimeOffset PurchasedAt,
    long? ByteQuota, long BytesUsed, long? BytesLeft)
{
    public static GrantView Of(Grant g, DateTimeOffset now)
    {
        var usage = g.UsageIn(g.Period(now));
        return new(g.Id, g.Dataset, g.From, g.Until, g.South is { } s ? new BoundingBox(s, g.West!.Value, g.North!.Value, g.East!.Value) : null, g.Devices, g.Make,
            g.Subscription, g.RowQuota, usage.Rows, g.RowsLeft(now), g.ExpiresAt, g.Credits, usage.Credits, g.PurchasedAt,
            g.ByteQuota, usage.Bytes, g.ByteQuota is null ? null : g.BytesLeft(now));
    }
}
public sealed record AccountView(string Id, string Name, long Balance, DateTimeOffset CreatedAt, IReadOnlyList<KeyView> Keys, IReadOnlyList<GrantView> Grants)
{
    public static AccountView Of(BuyerAccount a, IReadOnlyList<BuyerKey> keys, DateTimeOffset now) =>
        new(a.Id, a.Name, a.Balance, a.CreatedAt, keys.Select(Key).ToList(), a.Grants.Select(g => GrantView.Of(g, now)).ToList());

    /// <summary>The account as its owner and the operator see it: with its keys, read beside it.</summary>
    public static async Task<AccountView> OfAsync(BuyerAccount account, MarketAccounts accounts, CancellationToken cancellation) =>
        Of(account, await accounts.KeysAsync(account.Id, cancellation), accounts.Clock.GetUtcNow());

    public static KeyView Key(BuyerKey k) => new(k.Id, k.Label, k.IssuedAt, k.RevokedAt);
}
public sealed record CreatedBuyer(AccountView Buyer, string ApiKey);

/// <summary>The marketplace's HTTP API on the API port: catalog (public), accounts (operator and buyer), grants and queries (buyer).</summary>
public static class MarketplaceEndpoints
{
    public const string LakeCheckpointHeader = "X-Lake-Checkpoint";

    private static readonly Dictionary<string, (ResultFormat Format, string ContentType)> Formats = new(StringComparer.OrdinalIgnoreCase)
    {
        ["json"] = (ResultFormat.Json, "application/json"),
        ["csv"] = (ResultFormat.Csv, "text/csv"),
        ["arrow"] = (ResultFormat.ArrowIpc, "application/vnd.apache.arrow.stream"),
        ["parquet"] = (ResultFormat.Parquet, "application/vnd.apache.parquet"),
    };

    public static IEndpointRouteBuilder MapMarketplaceApi(this IEndpointRouteBuilder app, int port)
    {
        var options = app.ServiceProvider.GetRequiredService<IOptions<MarketplaceOptions>>().Value;
        var v1 = app.MapGroupOnPort("/v1", port)
            .WithTags("Marketplace")
            .RequireRateLimiting(MarketRateLimit.Policy)
            .WithMetadata(new RequestSizeLimitAttribute(options.MaxBodyBytes))
            .AddEndpointFilter(Refusals)
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status429TooManyRequests);
        MapCatalog(v1);
        v1.MapGet("/marketplace", (MarketSigner signer) => TypedResults.Ok(new MarketplaceDescription(signer.Key.Address.ToString(), Formats.Keys.ToList(), PreviewRows)))
            .WithName("DescribeMarketplace")
            .WithSummary("The marketplace's signing address and result formats")
            .WithDescription("Export manifests are signed (EIP-191) by this address: `cast wallet verify --address <signer> \"$(cat manifest.json)\" $(cat manifest.json.sig)`.");
        MapOperator(v1.MapGroup("/buyers").RequireAuthorization(MarketKeyHandler.OperatorPolicy).ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden));
        MapContributors(v1);
        MapBuyer(v1.MapGroup("").RequireAuthorization(MarketKeyHandler.BuyerPolicy).ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden));
        return app;
    }

    private static void MapCatalog(RouteGroupBuilder v1)
    {
        v1.MapGet("/datasets", async (DatasetCatalog catalog, IOptions<MarketplaceOptions> options, CancellationToken cancellation) =>
                TypedResults.Ok(await catalog.ListAsync(options.Value, cancellation)))
            .WithName("ListDatasets")
            .WithSummary("Datasets for sale")
            .WithDescription("Every dataset with its rows, time coverage, devices, freshness (seconds since the newest row was received) and price per 1,000 rows. No key needed.");

        v1.MapGet("/datasets/{name}", async Task<Results<Ok<DatasetDetail>, ProblemHttpResult>> (HttpContext context, string name, DatasetCatalog catalog, IOptions<MarketplaceOptions> options, CancellationToken cancellation) =>
                await catalog.DescribeAsync(name, options.Value, cancellation) is { } detail ? TypedResults.Ok(detail) : UnknownDataset(context, name))
            .WithName("DescribeDataset")
            .WithSummary("One dataset: schema, coverage, regions, quality, price")
            .WithDescription("The schema (column, type, unit, meaning), regions as 1° cells with their rows, and a quality report: rows accepted, rejected by reason, mean completeness, uptime and quality score per device and epoch.")
            .ProducesProblem(StatusCodes.Status404NotFound);

        v1.MapGet("/datasets/{name}/preview", async Task<Results<FileContentHttpResult, ProblemHttpResult>> (HttpContext context, string name, DatasetPreviews previews, CancellationToken cancellation) =>
            {
                if (MarketDatasets.Find(name) is not { } dataset) return UnknownDataset(context, name);
                var preview = await previews.GetAsync(dataset, cancellation);
                context.Response.Headers[LakeCheckpointHeader] = Invariant(preview.LakeCheckpoint);
                return TypedResults.File(preview.Json, "application/json");
            })
            .WithName("PreviewDataset")
            .WithSummary($"The newest rows of a dataset, free")
            .WithDescription($"At most {PreviewRows} rows, newest first, as a JSON array of objects, read at the lake checkpoint in X-Lake-Checkpoint (re-read at most every Marketplace:CatalogRefresh, like the catalog). No key needed, nothing charged.")
            .ProducesProblem(StatusCodes.Status404NotFound);

        v1.MapGet("/datasets/{name}/series", async Task<Results<Ok<DatasetSeriesView>, ProblemHttpResult>> (HttpContext context, string name, string? signal, string? device, string? near,
                DatasetSeries series, CancellationToken cancellation) =>
                MarketDatasets.Find(name) is { } dataset ? TypedResults.Ok(await series.GetAsync(dataset, signal, device, near, cancellation)) : UnknownDataset(context, name))
            .WithName("DatasetSeries")
            .WithSummary("A dataset's rows over time, and a signal's mean, min and max, free")
            .WithDescription($"Rows per bucket of device time over the dataset's whole coverage — buckets of a minute, an hour, a day or a week, the smallest that keeps the series under {DatasetSeries.MaxBuckets} points — of every device, one device (device=0x…) or one 1° cell (near=lat,lon); with signal (a signal column), that signal's mean, min and max per bucket. Computed like the catalog (re-read at most every Marketplace:CatalogRefresh). No key needed, nothing charged.")
            .ProducesProblem(StatusCodes.Status404NotFound);
    }

    public const int PreviewRows = 20;

    private static void MapOperator(RouteGroupBuilder buyers)
    {
        buyers.MapPost("", async Task<Results<Created<CreatedBuyer>, ProblemHttpResult>> (HttpContext context, CreateBuyerRequest request, MarketAccounts accounts, CancellationToken cancellation) =>
            {
                if (string.IsNullOrWhiteSpace(request.Name) || request.Name.Length > 100 || request.Name.Any(char.IsControl))
                    return MarketProblems.Invalid(context, "name is required: 1 to 100 printable characters.");
                if (request.Credits is < 0) return MarketProblems.Invalid(context, "credits cannot be negative.");
                var (account, key) = await accounts.CreateBuyerAsync(request.Name, request.Credits ?? 0, cancellation);
                return TypedResults.Created($"/v1/buyers/{account.Id}", new CreatedBuyer(await AccountView.OfAsync(account, accounts, cancellation), key));
            })
            .WithName("CreateBuyer")
            .WithSummary("Create a buyer (operator)")
            .WithDescription("Opens an account with an optional opening balance and returns its first API key. The key is shown only here; the marketplace keeps its SHA-256.")
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge);

        buyers.MapGet("/{buyerId}", async Task<Results<Ok<AccountView>, ProblemHttpResult>> (HttpContext context, string buyerId, MarketAccounts accounts, CancellationToken cancellation) =>
                await accounts.FindAsync(buyerId, cancellation) is { } account
                    ? TypedResults.Ok(await AccountView.OfAsync(account, accounts, cancellation))
                    : MarketProblems.For(context, StatusCodes.Status404NotFound, MarketReason.UnknownBuyer, $"There is no buyer {buyerId}."))
            .WithName("GetBuyer")
            .WithSummary("A buyer's account (operator)")
            .ProducesProblem(StatusCodes.Status404NotFound);

        buyers.MapPost("/{buyerId}/credits", async Task<Results<Ok<AccountView>, ProblemHttpResult>> (HttpContext context, string buyerId, AddCreditsRequest request, MarketAccounts accounts, CancellationToken cancellation) =>
            {
                if (request.Credits is not (> 0 and <= 1_000_000_000_000)) return MarketProblems.Invalid(context, "credits must be a whole number from 1 to 10^12.");
                var account = await accounts.AddCreditsAsync(buyerId, request.Credits.Value, request.Note ?? "", cancellation);
                return TypedResults.Ok(await AccountView.OfAsync(account, accounts, cancellation));
            })
            .WithName("AddCredits")
            .WithSummary("Add credits to a buyer's balance (operator)")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge);

        buyers.MapPost("/{buyerId}/keys", (string buyerId, IssueKeyRequest request, MarketAccounts accounts, CancellationToken cancellation) => IssueAsync(buyerId, request, accounts, cancellation))
            .WithName("IssueBuyerKey")
            .WithSummary("Issue another API key to a buyer (operator)")
            .WithDescription($"At most {MarketAccounts.MaxLiveKeys} live keys per account (too_many_keys).")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge);

        buyers.MapDelete("/{buyerId}/keys/{keyId}", async (string buyerId, string keyId, MarketAccounts accounts, CancellationToken cancellation) =>
                TypedResults.Ok(AccountView.Key(await accounts.RevokeKeyAsync(buyerId, keyId, cancellation))))
            .WithName("RevokeBuyerKey")
            .WithSummary("Revoke a buyer's API key (operator)")
            .ProducesProblem(StatusCodes.Status404NotFound);
    }

    private static void MapBuyer(RouteGroupBuilder buyer)
    {
        MapExports(buyer);
        buyer.MapGet("/account", async Task<Results<Ok<AccountView>, ProblemHttpResult>> (HttpContext context, MarketAccounts accounts, CancellationToken cancellation) =>
                await accounts.FindAsync(context.User.BuyerId(), cancellation) is { } account
                    ? TypedResults.Ok(await AccountView.OfAsync(account, accounts, cancellation))
                    : MarketProblems.For(context, StatusCodes.Status404NotFound, MarketReason.UnknownBuyer, "The account no longer exists."))
            .WithName("GetAccount")
            .WithSummary("Your account: balance, keys, grants and their use")
            .ProducesProblem(StatusCodes.Status404NotFound);

        buyer.MapGet("/account/history", async Task<Results<Ok<IReadOnlyList<AccountEntry>>, ProblemHttpResult>> (HttpContext context, int? limit, AccountHistory history, CancellationToken cancellation) =>
                limit is < 1 or > AccountHistory.MaxEntries
                    ? MarketProblems.Invalid(context, $"limit is from 1 to {AccountHistory.MaxEntries} (100 when left out).")
                    : TypedResults.Ok(await history.ReadAsync(context.User.BuyerId(), limit ?? 100, cancellation)))
            .WithName("GetAccountHistory")
            .WithSummary("Your spend over time: credits in, grants bought, and each query, export and feed charge")
            .WithDescription($"The newest `limit` entries first (at most {AccountHistory.MaxEntries}). balanceChange is what the entry did to the balance: credits added or paid in, a grant's price taken; a charge uses a grant's prepaid credits (credits) and leaves the balance alone.");

        buyer.MapPost("/account/keys", (HttpContext context, IssueKeyRequest request, MarketAccounts accounts, CancellationToken cancellation) => IssueAsync(context.User.BuyerId(), request, accounts, cancellation))
            .WithName("IssueKey")
            .WithSummary("Issue yourself another API key")
            .WithDescription($"Shown only in this response; keep several to rotate them without downtime. At most {MarketAccounts.MaxLiveKeys} live keys per account (too_many_keys): revoke one to issue another.")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge);

        buyer.MapDelete("/account/keys/{keyId}", async (HttpContext context, string keyId, MarketAccounts accounts, CancellationToken cancellation) =>
                TypedResults.Ok(AccountView.Key(await accounts.RevokeKeyAsync(context.User.BuyerId(), keyId, cancellation))))
            .WithName("RevokeKey")
            .WithSummary("Revoke one of your API keys")
            .WithDescription("It stops working at once, for every request after this one.")
            .ProducesProblem(StatusCodes.Status404NotFound);

        buyer.MapPost("/grants", async (HttpContext context, GrantRequest request, GrantPurchases purchases, MarketAccounts accounts, IOptions<MarketplaceOptions> options, CancellationToken cancellation) =>
            {
                var grant = await purchases.BuyAsync(context.User.BuyerId(), request, options.Value, cancellation);
                return TypedResults.Created($"/v1/grants/{grant.Id}", GrantView.Of(grant, accounts.Clock.GetUtcNow()));
            })
            .WithName("BuyGrant")
            .WithSummary("Buy a grant")
            .WithDescription("A dataset's rows in device time [from, until) — leave until out for a subscription with rowQuota rows per calendar month (UTC) — optionally inside a box and only of some devices or a make, until expiresAt. Priced rowQuota × the dataset's credits per 1,000 rows ÷ 1,000, rounded up (per started 30 days for a subscription), paid from the balance. " +
                $"At most {GrantPurchases.MaxLiveGrants} grants that can still deliver per account (too_many_grants); one expired or used up leaves the account at the next purchase.")
            .ProducesProblem(StatusCodes.Status402PaymentRequired)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge);

        buyer.MapGet("/grants/{grantId}", async Task<Results<Ok<GrantView>, ProblemHttpResult>> (HttpContext context, string grantId, MarketAccounts accounts, CancellationToken cancellation) =>
                (await accounts.FindAsync(context.User.BuyerId(), cancellation))?.FindGrant(grantId) is { } grant
                    ? TypedResults.Ok(GrantView.Of(grant, accounts.Clock.GetUtcNow()))
                    : MarketProblems.For(context, StatusCodes.Status404NotFound, MarketReason.UnknownGrant, $"You have no grant '{grantId}'."))
            .WithName("GetGrant")
            .WithSummary("One of your grants and its use")
            .ProducesProblem(StatusCodes.Status404NotFound);

        buyer.MapGet("/grants/{grantId}/feed", async (HttpContext context, string grantId, Feed.GrantFeeds feeds, CancellationToken cancellation) =>
            {
                await feeds.StreamAsync(context, context.User.BuyerId(), context.User.FindFirst(MarketKeyHandler.KeyIdClaim)!.Value, grantId, cancellation);
                return Results.Empty;
            })
            .WithName("FollowGrant")
            .WithSummary("Follow a subscription grant's new rows (server-sent events)")
            .WithDescription("A text/event-stream of the grant's rows as the lake projects them, from the lake's checkpoint now. Each `rows` event is a JSON array of rows (as POST /v1/query's JSON) and is charged before it is sent (FeedCharged, and a SalesAttributed with its rows per device and epoch); its id, 'checkpoint:event_seq', resumes the feed right after it when sent back as Last-Event-ID. Comments (': keep-alive') come when idle. The stream ends with an `end` event ({reason, status, detail}) when the quota is used up (quota_exhausted) or the grant expires (grant_expired); a client that lets events pile up is dropped (the connection closes; resume with Last-Event-ID). At most Marketplace:MaxFeedsPerKey feeds per key (too_many_feeds).")
            .Produces(StatusCodes.Status200OK, contentType: "text/event-stream")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status409Conflict);

        buyer.MapPost("/query", async Task<Results<PushStreamHttpResult, ProblemHttpResult>> (HttpContext context, QueryRequest request, GrantedQueries queries, IOptions<MarketplaceOptions> options, CancellationToken cancellation) =>
            {
                if (string.IsNullOrEmpty(request.Grant) || request.Sql is null) return MarketProblems.Invalid(context, "grant (a grant id) and sql are required.");
                if (NegotiateFormat(context, request.Format) is not { } format)
                    return MarketProblems.For(context, StatusCodes.Status406NotAcceptable, MarketReason.NotAcceptable,
                        $"Results come as {string.Join(", ", Formats.Keys)}: name one in format, or Accept one of {string.Join(", ", Formats.Values.Select(f => f.ContentType))}.");
                if (request.AsOf is < 0) return MarketProblems.Invalid(context, "asOf is a lake checkpoint (X-Lake-Checkpoint of an earlier result): a whole number ≥ 0.");
                var charged = await queries.RunAsync(context.User.BuyerId(), request.Grant, request.Sql, format.Format, request.AsOf, options.Value, cancellation);
                context.Response.RegisterForDispose(charged);
                var headers = context.Response.Headers;
                headers[LakeCheckpointHeader] = Invariant(charged.Result.LakeCheckpoint);
                headers["X-Rows"] = Invariant(charged.Result.Rows);
                headers["X-Bytes"] = Invariant(charged.Result.Bytes);
                headers["X-Truncated"] = charged.Result.Truncated ? "true" : "false";
                if (charged.ChargeId is { } chargeId) headers["X-Charge-Id"] = chargeId; // none for a result without rows: nothing was charged
                headers["X-Credits"] = Invariant(charged.Credits);
                // The result is whole before it is sent: its length spares the response chunked encoding and its end chunk.
                context.Response.ContentLength = charged.Result.Bytes;
                return TypedResults.Stream(body => charged.Content.DrainBufferAsync(body, cancellation), format.ContentType);
            })
            .WithName("Query")
            .WithSummary("Run SQL over a grant")
            .WithDescription("One read-only SELECT in which the grant's dataset is the only table, restricted to the grant's rows. The result comes as JSON, CSV, an Arrow IPC stream or Parquet (format, or the Accept header), at most the grant's remaining rows; it is charged (rows against the quota, their share of the grant's price in credits) before it is sent. asOf (a checkpoint, as an earlier result's X-Lake-Checkpoint) reads the lake exactly as it was then (410 snapshot_expired once its files are past Lake:SnapshotRetention). Headers: X-Lake-Checkpoint (the lake read), X-Rows, X-Bytes, X-Truncated, X-Charge-Id (none for a result without rows, which is neither charged nor recorded), X-Credits. Sandbox refusals are problems whose reason names the rule (see the README).")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status406NotAcceptable)
            .ProducesProblem(StatusCodes.Status409Conflict)
            .ProducesProblem(StatusCodes.Status410Gone)
            .ProducesProblem(StatusCodes.Status422UnprocessableEntity)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge);
    }

    private static void MapContributors(RouteGroupBuilder v1)
    {
        var login = v1.MapGroup("/contributors").WithTags("Contributors");
        login.MapPost("/challenge", async (ChallengeRequest request, ContributorLogin logins, CancellationToken cancellation) =>
                TypedResults.Ok(await logins.ChallengeAsync(request.Address ?? "", cancellation)))
            .WithName("ContributorChallenge")
            .WithSummary("A login challenge for a device owner's wallet")
            .WithDescription("Sign the message with EIP-191 (personal_sign; `cast wallet sign --private-key … \"$message\"`) within five minutes and send it to POST /v1/contributors/session.")
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge);
        login.MapPost("/session", async (LoginRequest request, ContributorLogin logins, CancellationToken cancellation) =>
                TypedResults.Ok(await logins.LoginAsync(request.Message ?? "", request.Signature ?? "", cancellation)))
            .WithName("ContributorLogin")
            .WithSummary("Trade a signed challenge for a session token (an hour)")
            .WithDescription("The token (dcs_…) goes in 'Authorization: Bearer …' for /v1/contributor/*. A challenge is used once. Sessions are kept (as SHA-256 hashes) in the event store's database, so they survive a restart and every API replica accepts them; DELETE /v1/contributor/session ends one. An address keeps its newest 5 sessions (a login past them ends the oldest) and logs in at most 10 times in five minutes (too_many_logins).")
            .ProducesProblem(StatusCodes.Status401Unauthorized)
            .ProducesProblem(StatusCodes.Status429TooManyRequests)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge);

        var contributor = v1.MapGroup("/contributor").WithTags("Contributors").RequireAuthorization(MarketKeyHandler.ContributorPolicy)
            .ProducesProblem(StatusCodes.Status401Unauthorized).ProducesProblem(StatusCodes.Status403Forbidden);
        contributor.MapGet("/devices", async (HttpContext context, ContributorData data, CancellationToken cancellation) =>
                TypedResults.Ok(await data.DevicesAsync(context.User.ContributorAddress(), cancellation)))
            .WithName("ContributorDevices")
            .WithSummary("The devices your wallet owns");
        contributor.MapGet("/sales", async (HttpContext context, ContributorData data, CancellationToken cancellation) =>
                TypedResults.Ok(await data.SalesAsync(context.User.ContributorAddress(), cancellation)))
            .WithName("ContributorSales")
            .WithSummary("What of your devices' data was sold: rows and credits per device and dataset")
            .WithDescription("From every charge's SalesAttributed (queries, exports and feeds), for the devices you own now.");
        contributor.MapDelete("/session", async (HttpContext context, ContributorLogin logins, bool? everywhere, CancellationToken cancellation) =>
                TypedResults.Ok(new LoggedOut(await logins.LogoutAsync(MarketKeyHandler.BearerToken(context.Request), everywhere ?? false, cancellation))))
            .WithName("ContributorLogout")
            .WithSummary("End this session, or with ?everywhere=true every session of your address")
            .WithDescription("The token stops working at once on every replica. `sessions` says how many sessions ended.");
    }

    private static void MapExports(RouteGroupBuilder buyer)
    {
        buyer.MapPost("/exports", async (HttpContext context, ExportRequestBody request, ExportQueue jobs, CancellationToken cancellation) =>
            {
                if (string.IsNullOrEmpty(request.Grant)) return (IResult)MarketProblems.Invalid(context, "grant (a grant id) is required.");
                var job = await jobs.StartAsync(context.User.BuyerId(), request.Grant, request.Shards ?? 1, cancellation);
                return TypedResults.Accepted($"/v1/exports/{job.Id}", job);
            })
            .WithName("StartExport")
            .WithSummary("Export a grant's slice as Parquet")
            .WithDescription("Starts a job writing the grant's rows as hive-partitioned Parquet (zstd), optionally in N shards equal by rows, with a manifest (schema, files, rows, SHA-256, IPFS CIDv1, event-sequence range, lake checkpoint, quality report) signed by the marketplace (GET /v1/marketplace). The slice must fit the grant's rows left; it is charged when the files are written, before they can be downloaded.")
            .Produces<ExportJob>(StatusCodes.Status202Accepted)
            .ProducesProblem(StatusCodes.Status403Forbidden)
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge);

        buyer.MapGet("/exports/{exportId}", async Task<Results<Ok<ExportJob>, ProblemHttpResult>> (HttpContext context, string exportId, int? wait, ExportQueue jobs, CancellationToken cancellation) =>
                wait is < 0 || wait > ExportQueue.MaxWait.TotalSeconds
                    ? MarketProblems.Invalid(context, $"wait is from 0 to {ExportQueue.MaxWait.TotalSeconds} seconds.")
                    : await jobs.FindAsync(context.User.BuyerId(), exportId, cancellation, TimeSpan.FromSeconds(wait ?? 0)) is { } job ? TypedResults.Ok(job) : UnknownExport(context, exportId))
            .WithName("GetExport")
            .WithSummary("An export's status and progress; with ?wait=N, once it is done or failed (at most N seconds)")
            .WithDescription($"Any API replica answers: the job's state is kept in PostgreSQL. A job whose replica stopped (no heartbeat for Marketplace:ExportHeartbeatTimeout) is failed, saying so, and was not charged. With `wait` (seconds, at most {ExportQueue.MaxWait.TotalSeconds}) an unfinished job is answered when it ends — at once by the replica running it, within a heartbeat by another — or when the wait is over, still running: one request instead of a poll loop.")
            .ProducesProblem(StatusCodes.Status404NotFound);

        buyer.MapGet("/exports/{exportId}/manifest", (HttpContext context, string exportId, ExportQueue jobs, CancellationToken cancellation) =>
                DownloadAsync(context, jobs, exportId, ExportEngine.ManifestFile, "application/json", cancellation))
            .WithName("GetExportManifest")
            .WithSummary("A finished export's manifest.json, exactly the bytes that were signed")
            .Produces(StatusCodes.Status200OK, contentType: "application/json")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        buyer.MapGet("/exports/{exportId}/manifest.sig", (HttpContext context, string exportId, ExportQueue jobs, CancellationToken cancellation) =>
                DownloadAsync(context, jobs, exportId, ExportEngine.SignatureFile, "text/plain", cancellation))
            .WithName("GetExportSignature")
            .WithSummary("The EIP-191 signature of the manifest's bytes (0x, 65 bytes)")
            .Produces(StatusCodes.Status200OK, contentType: "text/plain")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        buyer.MapGet("/exports/{exportId}/files/{**path}", (HttpContext context, string exportId, string path, ExportQueue jobs, CancellationToken cancellation) =>
                DownloadAsync(context, jobs, exportId, path, "application/vnd.apache.parquet", cancellation, listedFile: true))
            .WithName("GetExportFile")
            .WithSummary("One Parquet file of a finished export, by its path in the manifest")
            .Produces(StatusCodes.Status200OK, contentType: "application/vnd.apache.parquet")
            .ProducesProblem(StatusCodes.Status404NotFound)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);
    }

    /// <summary>
    /// A file of a finished export, from the export folder every replica mounts. A replica that cannot see the folder
    /// answers 503 <c>export_files_unavailable</c> (a deployment without the shared volume), never a 404 that would
    /// tell the buyer the export is gone.
    /// </summary>
    private static async Task<IResult> DownloadAsync(HttpContext context, ExportQueue jobs, string exportId, string relative, string contentType, CancellationToken cancellation, bool listedFile = false)
    {
        if (await jobs.OutputOfAsync(context.User.BuyerId(), exportId, cancellation) is not { } output) return UnknownExport(context, exportId);
        var manifestFile = Path.Combine(output, ExportEngine.ManifestFile);
        if (!File.Exists(manifestFile))
            return MarketProblems.For(context, StatusCodes.Status503ServiceUnavailable, MarketReason.ExportFilesUnavailable,
                $"Export '{exportId}' is done, but this API replica cannot read its files; try again (another replica may serve them) or ask the operator to mount the export folder on every replica.");
        // Only files the manifest lists: a path is never resolved against the folder unless it is one of them.
        if (listedFile && !JsonSerializer.Deserialize<ExportManifest>(await File.ReadAllBytesAsync(manifestFile, cancellation), ExportManifest.Json)!.Files.Any(f => f.Path == relative))
            return MarketProblems.For(context, StatusCodes.Status404NotFound, MarketReason.UnknownFile, $"The export has no file '{relative}'; its manifest lists them.");
        return TypedResults.PhysicalFile(Path.Combine(output, relative), contentType, Path.GetFileName(relative));
    }

    private static ProblemHttpResult UnknownExport(HttpContext context, string exportId) =>
        MarketProblems.For(context, StatusCodes.Status404NotFound, MarketReason.UnknownExport, $"You have no finished export '{exportId}'; GET /v1/exports/{{id}} says where it is.");

    private static async Task<Results<Ok<IssuedKey>, ProblemHttpResult>> IssueAsync(string buyerId, IssueKeyRequest request, MarketAccounts accounts, CancellationToken cancellation)
    {
        var label = request.Label ?? "";
        if (label.Length > 100 || label.Any(char.IsControl))
            throw new MarketRefusedException(StatusCodes.Status400BadRequest, MarketReason.InvalidRequest, "label is at most 100 printable characters.");
        var (key, secret) = await accounts.IssueKeyAsync(buyerId, label, cancellation);
        return TypedResults.Ok(new IssuedKey(AccountView.Key(key), secret));
    }

    private static (ResultFormat Format, string ContentType)? NegotiateFormat(HttpContext context, string? requested)
    {
        requested ??= context.Request.Query["format"].FirstOrDefault();
        if (requested is not null) return Formats.TryGetValue(requested, out var named) ? named : null;
        var accept = context.Request.GetTypedHeaders().Accept;
        if (accept.Count == 0) return Formats["json"];
        foreach (var type in accept.OrderByDescending(a => a.Quality ?? 1))
        {
            if (type.MediaType.Value is "*/*" or "application/*") return Formats["json"];
            if (Formats.Values.FirstOrDefault(f => string.Equals(f.ContentType, type.MediaType.Value, StringComparison.OrdinalIgnoreCase)) is { ContentType: not null } match) return match;
        }
        return null;
    }

    private static async ValueTask<object?> Refusals(EndpointFilterInvocationContext invocation, EndpointFilterDelegate next)
    {
        var context = invocation.HttpContext;
        try
        {
            return await next(invocation);
        }
        catch (MarketRefusedException refused)
        {
            return MarketProblems.For(context, refused.Status, refused.Reason, refused.Message);
        }
        catch (SandboxRefusedException refused)
        {
            return MarketProblems.For(context, MarketProblems.SandboxStatus(refused.Reason), refused.Reason, refused.Message);
        }
    }

    private static ProblemHttpResult UnknownDataset(HttpContext context, string name) =>
        MarketProblems.For(context, StatusCodes.Status404NotFound, MarketReason.UnknownDataset, $"There is no dataset '{name}'; GET /v1/datasets lists them.");

    private static string Invariant(long value) => value.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
