using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Pipeline.Infra.Hosting;
using Pipeline.Marketplace.Accounts;
using Pipeline.Marketplace.Sandbox;

namespace Pipeline.Marketplace;

/// <summary>The marketplace's reasons for refusing a request: the problem response's <c>reason</c>, firm once published.</summary>
public static class MarketReason
{
    public const string NoKey = "no_key";
    public const string UnknownKey = "unknown_key";
    public const string RevokedKey = "revoked_key";
    public const string WrongRole = "wrong_role";
    public const string RateLimited = "rate_limited";
    public const string InvalidRequest = "invalid_request";
    public const string UnknownBuyer = "unknown_buyer";
    public const string UnknownKeyId = "unknown_key_id";
    public const string TooManyKeys = "too_many_keys";
    public const string TooManyGrants = "too_many_grants";
    public const string UnknownDataset = "unknown_dataset";
    public const string UnknownGrant = "unknown_grant";
    public const string InsufficientCredit = "insufficient_credit";
    public const string QuotaExhausted = "quota_exhausted";
    public const string ByteQuotaExceeded = "byte_quota_exceeded";
    public const string GrantExpired = "grant_expired";
    public const string NotAcceptable = "not_acceptable";
    public const string UnknownExport = "unknown_export";
    public const string StaleChallenge = "stale_challenge";
    public const string BadSignature = "bad_signature";
    public const string UnknownFile = "unknown_file";
    public const string ExportFilesUnavailable = "export_files_unavailable";
    public const string NotSubscription = "not_subscription";
    public const string TooManyFeeds = "too_many_feeds";
    public const string TooManyLogins = "too_many_logins";
    public const string SnapshotExpired = "snapshot_expired";
}

/// <summary>RFC 9457 problem responses with a <c>reason</c>, as the rest of the API answers.</summary>
public static class MarketProblems
{
    public static ProblemHttpResult For(HttpContext context, int status, string reason, string detail) =>
        TypedResults.Problem(
            detail: detail,
            statusCode: status,
            title: reason.Replace('_', ' '),
            type: $"/problems/{reason}",
            instance: context.Request.Path,
            extensions: new Dictionary<string, object?> { ["reason"] = reason });

    public static ProblemHttpResult Invalid(HttpContext context, string detail) => For(context, StatusCodes.Status400BadRequest, MarketReason.InvalidRequest, detail);

    /// <summary>A sandbox refusal is the query's fault (400); a statement stopped once it ran is unprocessable (422).</summary>
    public static int SandboxStatus(string reason) => reason is SandboxReason.Timeout or SandboxReason.OutOfMemory or SandboxReason.QueryFailed
        ? StatusCodes.Status422UnprocessableEntity
        : StatusCodes.Status400BadRequest;

    /// <summary>
    /// What GET /problems/{reason} says of the marketplace's and the sandbox's reasons. Those the core list already has
    /// (rate_limited, bad_signature, bad_encoding) keep the core's explanation.
    /// </summary>
    public static IReadOnlyList<ProblemExplanation> Explanations { get; } =
    [
        .. new (string Reason, int Status, string Description)[]
        {
            (MarketReason.NoKey, 401, "The route needs a key and the request has no 'Authorization: Bearer …' header: an operator key, a buyer's API key (dmk_…) or a contributor's session token (dcs_…)."),
            (MarketReason.UnknownKey, 401, "Nobody holds this key or session token (a typo, a key of another marketplace, or a session that expired); ask the operator for a key or log in again."),
            (MarketReason.RevokedKey, 401, "The API key was revoked; use another of the buyer's keys or ask the operator to issue one."),
            (MarketReason.WrongRole, 403, "The key is of another role than the route's: operator routes (/v1/buyers) take the operator key, buyer routes an API key, /v1/contributor/* a contributor session."),
            (MarketReason.InvalidRequest, 400, "A field is missing or out of range; the detail names each one and its limits."),
            (MarketReason.UnknownBuyer, 404, "There is no buyer with this id (or the key's account no longer exists)."),
            (MarketReason.UnknownKeyId, 404, "The account has no key with this id; GET /v1/account lists the keys."),
            (MarketReason.TooManyKeys, 409, $"The account holds {MarketAccounts.MaxLiveKeys} live keys, as many as an account may; revoke one it no longer uses (DELETE /v1/account/keys/{{keyId}}) before issuing another."),
            (MarketReason.UnknownDataset, 404, "There is no dataset of this name for sale; GET /v1/datasets lists them."),
            (MarketReason.UnknownGrant, 404, "The account has no grant with this id (another buyer's grant is unknown too; a grant expired or used up leaves the account at its next purchase, and only GET /v1/account/history names it then); GET /v1/account lists yours."),
            (MarketReason.TooManyGrants, 409, $"The account holds {Grants.GrantPurchases.MaxLiveGrants} grants that can still deliver rows, as many as an account may; use one up or let it expire before buying another."),
            (MarketReason.InsufficientCredit, 402, "The grant costs more credits than the balance holds; add credits or buy fewer rows."),
            (MarketReason.QuotaExhausted, 403, "The grant has no rows left (for a subscription, this calendar month's); 409 when another request used them while this one ran, and nothing was charged."),
            (MarketReason.ByteQuotaExceeded, 403, "The result is larger than the bytes the grant has left (its byte quota; for a subscription, this calendar month's): nothing of it was delivered or charged. Select fewer rows or columns, ask for Parquet (compressed), or buy a grant with a larger byteQuotaMegabytes."),
            (MarketReason.GrantExpired, 403, "The grant is past its expiresAt: it can no longer be queried or exported; buy a new one."),
            (MarketReason.NotAcceptable, 406, "The format or Accept header asks for a result format the API does not write: json, csv, arrow or parquet."),
            (MarketReason.UnknownExport, 404, "The account has no finished export with this id (another buyer's export is unknown too); GET /v1/exports/{id} shows its status."),
            (MarketReason.StaleChallenge, 401, "The contributor login's challenge is not one to trade: not issued by this marketplace (or altered), already traded for a session, or past its five minutes; ask for a new one."),
            (MarketReason.UnknownFile, 404, "The export has no file at this path; its manifest lists the files."),
            (MarketReason.ExportFilesUnavailable, 503, "The export is done, but the API replica that answered cannot read the export folder (every replica must mount it; see the README's Deployment). Try again, or ask the operator."),
            (MarketReason.NotSubscription, 409, "Only a subscription grant (bought without 'until') has a live feed; query a fixed range with POST /v1/query or export it."),
            (MarketReason.TooManyFeeds, 429, "The key has as many live feeds open as Marketplace:MaxFeedsPerKey allows; close one first."),
            (MarketReason.TooManyLogins, 429, $"The address traded {Contributors.ContributorLogin.MaxLoginsPerAddress} login challenges in the last five minutes, as many as it may; use a session it has (it keeps its newest {Contributors.ContributorLogin.MaxSessionsPerAddress}) or log in again in a few minutes."),
            (MarketReason.SnapshotExpired, 410, "The query's as_of names a checkpoint whose files the lake no longer keeps (Lake:SnapshotRetention after compaction replaced them); query a later checkpoint, or the lake as it is now."),
            (SandboxReason.EmptyStatement, 400, "The SQL holds no statement; send one SELECT."),
            (SandboxReason.SqlTooLong, 400, "The SQL is over the size limit (16 KiB); shorten it."),
            (SandboxReason.SqlTooComplex, 400, "The statement nests too deep (256 levels of parse tree) or grows strings too far (literals of at most 256 characters, at most 16 values concatenated)."),
            (SandboxReason.SyntaxError, 400, "DuckDB cannot parse the SQL; its message is in the detail."),
            (SandboxReason.NotSelect, 400, "Only a SELECT runs: no COPY, ATTACH, INSTALL, LOAD, SET, PRAGMA, CREATE, INSERT, DROP, EXPLAIN or other statement."),
            (SandboxReason.MultipleStatements, 400, "A query is exactly one statement; send them one at a time."),
            (SandboxReason.UnknownTable, 400, "The only tables are the grant's dataset (by its plain name) and the query's own CTEs; files, catalogs, schemas and other datasets are not."),
            (SandboxReason.TableFunction, 400, "Table functions (read_csv, read_parquet, glob, duckdb_settings(), query_table, range, …) are refused: they could read files whole or reveal the catalog."),
            (SandboxReason.FunctionNotAllowed, 400, "The function is not on the sandbox's allowlist (getenv, current_setting, string-multiplying functions such as repeat or lpad, …)."),
            (SandboxReason.RecursiveQuery, 400, "WITH RECURSIVE is refused: recursion can run without end."),
            (SandboxReason.ShadowsGrant, 400, "A CTE may not take the name of the grant's dataset."),
            (SandboxReason.UnsupportedSyntax, 400, "The statement uses syntax not known to be harmless (time travel, UNPIVOT, parameters, …); write it another way."),
            (SandboxReason.UnsupportedType, 400, "A result column has a type no result format carries faithfully (INTERVAL, …); CAST it to VARCHAR or a number."),
            (SandboxReason.QueryFailed, 422, "DuckDB stopped the statement with an error (a bad column, a failed cast, …). The detail has its message when DuckDB raised it binding the query (a bad name, type or syntax); of any other only its kind (Conversion Error, …), since that message can quote a value of the row it failed on. Nothing was charged."),
            (SandboxReason.Timeout, 422, "The statement ran past the query time limit and was interrupted; narrow it. Nothing was charged."),
            (SandboxReason.OutOfMemory, 422, "The statement needed more than the query memory limit and was stopped; narrow it. Nothing was charged."),
        }.Select(e => new ProblemExplanation(e.Reason, e.Status, e.Description)),
    ];
}
