using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Marten;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;
using Pipeline.Core.Crypto;
using Pipeline.Infra.Postgres;
using Pipeline.Marketplace.Accounts;
using Pipeline.Registry;
using Weasel.Postgresql.Tables;

namespace Pipeline.Marketplace.Contributors;

public sealed record LoginChallenge(string Message, DateTimeOffset ExpiresAt);

public sealed record ContributorSession(string Token, string Address, DateTimeOffset ExpiresAt);

/// <summary>
/// Device owners log in with their wallet, no key: they ask for a challenge (the network, their address, a random nonce,
/// an expiry five minutes out, and a ticket: the HMAC-SHA256 of those lines under the marketplace's login key), sign it
/// with EIP-191 (personal_sign, `cast wallet sign`), and trade it for a session token good for an hour.
/// Issuing a challenge stores nothing — the ticket proves at the trade that this marketplace issued it, unaltered, and
/// the expiry inside it says until when — so asking for challenges by the million costs only the asker and never
/// crowds out another contributor's login. Only a challenge traded for a session is stored (until it expires), to use
/// it once: its row is inserted with its hash as the key, so of two replicas given the same challenge one inserts it
/// and the other is refused. The login key is one row in PostgreSQL, made by the first replica that needs it and read
/// by all (<see cref="Tables"/>); sessions are kept there too, as the SHA-256 of their token. Logging out deletes the
/// session, or all of the address's. Both are bounded per address: its newest <see cref="MaxSessionsPerAddress"/>
/// sessions live, and at most <see cref="MaxLoginsPerAddress"/> logins (traded challenges) in a challenge's lifetime.
/// </summary>
public sealed class ContributorLogin(IOptions<NetworkOptions> network, TimeProvider clock, IDocumentStore store, NpgsqlDataSource dataSource)
{
    public const string SessionPrefix = "dcs_";
    public static readonly TimeSpan ChallengeLifetime = TimeSpan.FromMinutes(5);
    public static readonly TimeSpan SessionLifetime = TimeSpan.FromHours(1);

    /// <summary>Live sessions an address keeps: a login past them ends its oldest, so a wallet cannot fill the table by logging in.</summary>
    public const int MaxSessionsPerAddress = 5;

    /// <summary>
    /// Challenges of one address traded in the last <see cref="ChallengeLifetime"/> (each is kept that long, to be used
    /// once): past them a login is refused <c>too_many_logins</c>, so the rows it keeps are bounded too.
    /// </summary>
    public const int MaxLoginsPerAddress = 10;
    private const string TradedTable = "market_login_challenges";
    private const string SessionsTable = "market_contributor_sessions";
    private const string KeyTable = "market_login_key";
    private const string TicketLine = "\nTicket: ";
    private const string ExpiresFormat = "yyyy-MM-ddTHH:mm:ssZ";

    private readonly string _schema = store.Schema();
    private byte[]? _key;

    /// <summary>The challenges traded (until they expire), the sessions open, by hash, with their expiry (both swept as new ones come), and the login key.</summary>
    public static Table[] Tables(string schema)
    {
        var traded = SchemaObjects.Table(schema, TradedTable);
        traded.AddColumn("message_sha256", "text").AsPrimaryKey();
        traded.AddColumn("address", "text").NotNull();
        traded.AddColumn("expires_at", "timestamptz").NotNull();
        traded.Indexes.Add(new IndexDefinition($"{TradedTable}_expires_at") { Columns = ["expires_at"] });
        traded.Indexes.Add(new IndexDefinition($"{TradedTable}_address") { Columns = ["address"] });

        var sessions = SchemaObjects.Table(schema, SessionsTable);
        sessions.AddColumn("token_sha256", "text").AsPrimaryKey();
        sessions.AddColumn("address", "text").NotNull();
        sessions.AddColumn("expires_at", "timestamptz").NotNull();
        sessions.Indexes.Add(new IndexDefinition($"{SessionsTable}_address") { Columns = ["address"] });
        sessions.Indexes.Add(new IndexDefinition($"{SessionsTable}_expires_at") { Columns = ["expires_at"] });

        var key = SchemaObjects.Table(schema, KeyTable);
        key.AddColumn("id", "integer").AsPrimaryKey();
        key.AddColumn("secret", "bytea").NotNull();
        return [traded, sessions, key];
    }

    public async Task<LoginChallenge> ChallengeAsync(string address, CancellationToken cancellation)
    {
        if (!EthAddress.TryParse(address, out var parsed))
            throw new MarketRefusedException(StatusCodes.Status400BadRequest, MarketReason.InvalidRequest, "address must be 0x and 40 hex digits (EIP-55 checksum when mixed case).");
        // Whole seconds, as the message writes it, so the expiry read back at the trade is the one answered here.
        var now = clock.GetUtcNow();
        var expires = DateTimeOffset.FromUnixTimeSeconds((now + ChallengeLifetime).ToUnixTimeSeconds());
        var nonce = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var body = $"""
            Log in to the {network.Value.Name} data marketplace as a contributor.
            Network: {network.Value.Name} (chain {network.Value.ChainId.ToString(CultureInfo.InvariantCulture)})
            Address: {parsed.ToLowerHex()}
            Nonce: {nonce}
            Expires: {expires.UtcDateTime.ToString(ExpiresFormat, CultureInfo.InvariantCulture)}
            """;
        return new LoginChallenge(body + TicketLine + await TicketAsync(body, cancellation), expires);
    }

    /// <summary>A session for the address that signed a challenge this marketplace issued, not expired and not traded before.</summary>
    public async Task<ContributorSession> LoginAsync(string message, string signature, CancellationToken cancellation)
    {
        var now = clock.GetUtcNow();
        var (address, expires) = await IssuedAsync(message, cancellation) ?? throw new MarketRefusedException(StatusCodes.Status401Unauthorized, MarketReason.StaleChallenge,
            "This is not a challenge this marketplace issued, or it was altered; ask POST /v1/contributors/challenge for a new one and sign it exactly as it is.");
        if (expires <= now)
            throw new MarketRefusedException(StatusCodes.Status401Unauthorized, MarketReason.StaleChallenge, $"The challenge expired at {expires:O}; ask POST /v1/contributors/challenge for a new one.");
        var bytes = new byte[PersonalSign.SignatureSize];
        if (!(signature.StartsWith("0x", StringComparison.Ordinal) && Hex.TryDecode(signature.AsSpan(2), bytes))
            || PersonalSign.TryRecover(Encoding.UTF8.GetBytes(message), bytes, out var signer) != SignatureCheck.Valid)
            throw new MarketRefusedException(StatusCodes.Status401Unauthorized, MarketReason.BadSignature, "signature is not a valid EIP-191 signature (0x + 130 hex) of the challenge.");
        if (signer.ToLowerHex() != address)
            throw new MarketRefusedException(StatusCodes.Status401Unauthorized, MarketReason.BadSignature, $"The challenge was signed by {signer.ToLowerHex()}, not by {address}.");

        var token = SessionPrefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var session = new ContributorSession(token, address, now + SessionLifetime);
        // One transaction: the challenge is marked traded (its hash is the key, so of two replicas one does it) and the
        // session made, or neither; then the address's sessions past the newest few end. Expired rows of both go first.
        var hash = Sha256(message);
        await using var batch = dataSource.CreateBatch();
        batch.BatchCommands.Add(BatchCommand($"DELETE FROM {_schema}.{TradedTable} WHERE expires_at <= $1", now));
        batch.BatchCommands.Add(BatchCommand($"DELETE FROM {_schema}.{SessionsTable} WHERE expires_at <= $1", now));
        batch.BatchCommands.Add(BatchCommand($"""
            WITH traded AS (
                INSERT INTO {_schema}.{TradedTable} (message_sha256, address, expires_at)
                SELECT $1, $2, $3 WHERE (SELECT count(*) FROM {_schema}.{TradedTable} WHERE address = $2) < $6
                ON CONFLICT DO NOTHING RETURNING 1)
            INSERT INTO {_schema}.{SessionsTable} (token_sha256, address, expires_at) SELECT $4, $2, $5 FROM traded
            """, hash, address, expires, ApiKeys.Hash(token), session.ExpiresAt, MaxLoginsPerAddress));
        batch.BatchCommands.Add(BatchCommand($"""
            DELETE FROM {_schema}.{SessionsTable} WHERE token_sha256 IN (
                SELECT token_sha256 FROM {_schema}.{SessionsTable} WHERE address = $1 ORDER BY expires_at DESC, token_sha256 OFFSET $2)
            """, address, MaxSessionsPerAddress));
        await batch.ExecuteNonQueryAsync(cancellation);
        if (batch.BatchCommands[2].RecordsAffected == 0)
        {
            await using var traded = Command($"SELECT count(*) FROM {_schema}.{TradedTable} WHERE message_sha256 = $1", hash);
            throw (long)(await traded.ExecuteScalarAsync(cancellation))! > 0
                ? new MarketRefusedException(StatusCodes.Status401Unauthorized, MarketReason.StaleChallenge, "This challenge was traded for a session already; ask POST /v1/contributors/challenge for a new one.")
                : new MarketRefusedException(StatusCodes.Status429TooManyRequests, MarketReason.TooManyLogins,
                    $"The address logged in {MaxLoginsPerAddress} times in the last {ChallengeLifetime.TotalMinutes:0} minutes; use one of those sessions (an address keeps its newest {MaxSessionsPerAddress}), or log in again in a few minutes.");
        }
        return session;
    }

    /// <summary>The address and expiry of a challenge whose ticket is this marketplace's, or null.</summary>
    private async Task<(string Address, DateTimeOffset Expires)?> IssuedAsync(string message, CancellationToken cancellation)
    {
        var at = message.LastIndexOf(TicketLine, StringComparison.Ordinal);
        if (at < 0) return null;
        var body = message[..at];
        var expected = Encoding.ASCII.GetBytes(await TicketAsync(body, cancellation));
        if (!CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(message[(at + TicketLine.Length)..]), expected)) return null;
        // The ticket is ours, so the lines are the ones ChallengeAsync wrote.
        var lines = body.Split('\n');
        var address = lines[2]["Address: ".Length..];
        var expires = DateTimeOffset.ParseExact(lines[4]["Expires: ".Length..], ExpiresFormat, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
        return (address, expires);
    }

    private async Task<string> TicketAsync(string body, CancellationToken cancellation) => Convert.ToHexStringLower(HMACSHA256.HashData(_key ??= await LoginKeyAsync(cancellation), Encoding.UTF8.GetBytes(body)));

    /// <summary>The login key every replica shares: made once, by whichever replica asks first (two at once read the same row).</summary>
    private async Task<byte[]> LoginKeyAsync(CancellationToken cancellation)
    {
        await using var batch = dataSource.CreateBatch();
        batch.BatchCommands.Add(BatchCommand($"INSERT INTO {_schema}.{KeyTable} (id, secret) VALUES (1, $1) ON CONFLICT DO NOTHING", RandomNumberGenerator.GetBytes(32)));
        batch.BatchCommands.Add(new NpgsqlBatchCommand($"SELECT secret FROM {_schema}.{KeyTable} WHERE id = 1"));
        return (byte[])(await batch.ExecuteScalarAsync(cancellation))!;
    }

    /// <summary>The address a live session token stands for, or null.</summary>
    public async Task<string?> AuthenticateAsync(string token, CancellationToken cancellation)
    {
        await using var command = Command($"SELECT address FROM {_schema}.{SessionsTable} WHERE token_sha256 = $1 AND expires_at > $2", ApiKeys.Hash(token), clock.GetUtcNow());
        return await command.ExecuteScalarAsync(cancellation) as string;
    }

    /// <summary>Ends the session of <paramref name="token"/>, or every session of its address; returns how many ended.</summary>
    public async Task<int> LogoutAsync(string token, bool everywhere, CancellationToken cancellation)
    {
        await using var command = Command(everywhere
            ? $"DELETE FROM {_schema}.{SessionsTable} WHERE address = (SELECT address FROM {_schema}.{SessionsTable} WHERE token_sha256 = $1)"
            : $"DELETE FROM {_schema}.{SessionsTable} WHERE token_sha256 = $1", ApiKeys.Hash(token));
        return await command.ExecuteNonQueryAsync(cancellation);
    }

    private NpgsqlCommand Command(string sql, params object[] values)
    {
        var command = dataSource.CreateCommand(sql);
        foreach (var value in values) command.Parameters.Add(Parameter(value));
        return command;
    }

    private static NpgsqlBatchCommand BatchCommand(string sql, params object[] values)
    {
        var command = new NpgsqlBatchCommand(sql);
        foreach (var value in values) command.Parameters.Add(Parameter(value));
        return command;
    }

    private static NpgsqlParameter Parameter(object value) =>
        value is DateTimeOffset time ? new NpgsqlParameter { Value = time, NpgsqlDbType = NpgsqlDbType.TimestampTz } : new NpgsqlParameter { Value = value };

    private static string Sha256(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));
}
