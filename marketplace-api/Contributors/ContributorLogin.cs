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
/// an expiry five minutes out), sign it with EIP-191 (personal_sign, `cast wallet sign`), and trade it for a session
/// token good for an hour. Challenges and sessions live in PostgreSQL (<see cref="Tables"/>), so they outlive a restart
/// and every API replica honours them: a challenge is used once wherever it is traded (deleted as it is read), and a
/// session is kept only as the SHA-256 of its token. Logging out deletes the session, or all of the address's.
/// </summary>
public sealed class ContributorLogin(IOptions<NetworkOptions> network, TimeProvider clock, IDocumentStore store, NpgsqlDataSource dataSource)
{
    public const string SessionPrefix = "dcs_";
    public static readonly TimeSpan ChallengeLifetime = TimeSpan.FromMinutes(5);
    public static readonly TimeSpan SessionLifetime = TimeSpan.FromHours(1);
    public const int MaxOutstanding = 100_000;
    private const string ChallengesTable = "market_login_challenges";
    private const string SessionsTable = "market_contributor_sessions";

    private readonly string _schema = store.Schema();

    /// <summary>The challenges outstanding and the sessions open, by hash, with their expiry (both swept as new ones come).</summary>
    public static Table[] Tables(string schema)
    {
        var challenges = SchemaObjects.Table(schema, ChallengesTable);
        challenges.AddColumn("message_sha256", "text").AsPrimaryKey();
        challenges.AddColumn("address", "text").NotNull();
        challenges.AddColumn("expires_at", "timestamptz").NotNull();
        challenges.Indexes.Add(new IndexDefinition($"{ChallengesTable}_expires_at") { Columns = ["expires_at"] });

        var sessions = SchemaObjects.Table(schema, SessionsTable);
        sessions.AddColumn("token_sha256", "text").AsPrimaryKey();
        sessions.AddColumn("address", "text").NotNull();
        sessions.AddColumn("expires_at", "timestamptz").NotNull();
        sessions.Indexes.Add(new IndexDefinition($"{SessionsTable}_address") { Columns = ["address"] });
        sessions.Indexes.Add(new IndexDefinition($"{SessionsTable}_expires_at") { Columns = ["expires_at"] });
        return [challenges, sessions];
    }

    public async Task<LoginChallenge> ChallengeAsync(string address, CancellationToken cancellation)
    {
        if (!EthAddress.TryParse(address, out var parsed))
            throw new MarketRefusedException(StatusCodes.Status400BadRequest, MarketReason.InvalidRequest, "address must be 0x and 40 hex digits (EIP-55 checksum when mixed case).");
        var now = clock.GetUtcNow();
        var expires = now + ChallengeLifetime;
        var nonce = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var message = $"""
            Log in to the {network.Value.Name} data marketplace as a contributor.
            Network: {network.Value.Name} (chain {network.Value.ChainId.ToString(CultureInfo.InvariantCulture)})
            Address: {parsed.ToLowerHex()}
            Nonce: {nonce}
            Expires: {expires.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture)}
            """;
        // Expired challenges go first; anyone may ask for challenges, so how many may be outstanding is bounded.
        await using var batch = dataSource.CreateBatch();
        batch.BatchCommands.Add(BatchCommand($"DELETE FROM {_schema}.{ChallengesTable} WHERE expires_at <= $1", now));
        batch.BatchCommands.Add(BatchCommand($"""
            INSERT INTO {_schema}.{ChallengesTable} (message_sha256, address, expires_at)
            SELECT $1, $2, $3 WHERE (SELECT count(*) FROM {_schema}.{ChallengesTable}) < {MaxOutstanding}
            """, Sha256(message), parsed.ToLowerHex(), expires));
        await batch.ExecuteNonQueryAsync(cancellation);
        if (batch.BatchCommands[1].RecordsAffected == 0)
            throw new MarketRefusedException(StatusCodes.Status503ServiceUnavailable, MarketReason.LoginsBusy, "Too many logins are under way; retry in a minute.");
        return new LoginChallenge(message, expires);
    }

    /// <summary>A session for the address that signed an outstanding challenge, which is used up whatever the signature.</summary>
    public async Task<ContributorSession> LoginAsync(string message, string signature, CancellationToken cancellation)
    {
        var now = clock.GetUtcNow();
        // Deleted as it is read: of two replicas given the same challenge, one gets its address and the other nothing.
        await using var take = Command($"DELETE FROM {_schema}.{ChallengesTable} WHERE message_sha256 = $1 AND expires_at > $2 RETURNING address", Sha256(message), now);
        var address = await take.ExecuteScalarAsync(cancellation) as string;
        if (address is null)
            throw new MarketRefusedException(StatusCodes.Status401Unauthorized, MarketReason.StaleChallenge, "This is not an outstanding challenge (unknown, used or expired); ask POST /v1/contributors/challenge for a new one.");
        var bytes = new byte[PersonalSign.SignatureSize];
        if (!(signature.StartsWith("0x", StringComparison.Ordinal) && Hex.TryDecode(signature.AsSpan(2), bytes))
            || PersonalSign.TryRecover(Encoding.UTF8.GetBytes(message), bytes, out var signer) != SignatureCheck.Valid)
            throw new MarketRefusedException(StatusCodes.Status401Unauthorized, MarketReason.BadSignature, "signature is not a valid EIP-191 signature (0x + 130 hex) of the challenge.");
        if (signer.ToLowerHex() != address)
            throw new MarketRefusedException(StatusCodes.Status401Unauthorized, MarketReason.BadSignature, $"The challenge was signed by {signer.ToLowerHex()}, not by {address}.");

        var token = SessionPrefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var session = new ContributorSession(token, address, now + SessionLifetime);
        await using var batch = dataSource.CreateBatch();
        batch.BatchCommands.Add(BatchCommand($"DELETE FROM {_schema}.{SessionsTable} WHERE expires_at <= $1", now));
        batch.BatchCommands.Add(BatchCommand($"INSERT INTO {_schema}.{SessionsTable} (token_sha256, address, expires_at) VALUES ($1, $2, $3)", ApiKeys.Hash(token), address, session.ExpiresAt));
        await batch.ExecuteNonQueryAsync(cancellation);
        return session;
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
