using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using Pipeline.Core.Crypto;
using Pipeline.Marketplace.Accounts;
using Pipeline.Registry;

namespace Pipeline.Marketplace.Contributors;

public sealed record LoginChallenge(string Message, DateTimeOffset ExpiresAt);

public sealed record ContributorSession(string Token, string Address, DateTimeOffset ExpiresAt);

/// <summary>
/// Device owners log in with their wallet, no key: they ask for a challenge (the network, their address, a random nonce,
/// an expiry five minutes out), sign it with EIP-191 (personal_sign, `cast wallet sign`), and trade it for a session
/// token good for an hour. A challenge is used once. Challenges and sessions live in this process's memory: a restart
/// logs everybody out, which costs a signature.
/// </summary>
public sealed class ContributorLogin(IOptions<NetworkOptions> network, TimeProvider clock)
{
    public const string SessionPrefix = "dcs_";
    public static readonly TimeSpan ChallengeLifetime = TimeSpan.FromMinutes(5);
    public static readonly TimeSpan SessionLifetime = TimeSpan.FromHours(1);
    private const int MaxOutstanding = 100_000;

    private readonly ConcurrentDictionary<string, (string Address, DateTimeOffset ExpiresAt)> _challenges = new();
    private readonly ConcurrentDictionary<string, (string Address, DateTimeOffset ExpiresAt)> _sessions = new();

    public LoginChallenge Challenge(string address)
    {
        if (!EthAddress.TryParse(address, out var parsed))
            throw new MarketRefusedException(StatusCodes.Status400BadRequest, MarketReason.InvalidRequest, "address must be 0x and 40 hex digits (EIP-55 checksum when mixed case).");
        var now = clock.GetUtcNow();
        Sweep(now);
        if (_challenges.Count >= MaxOutstanding)
            throw new MarketRefusedException(StatusCodes.Status503ServiceUnavailable, MarketReason.LoginsBusy, "Too many logins are under way; retry in a minute.");
        var expires = now + ChallengeLifetime;
        var nonce = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        var message = $"""
            Log in to the {network.Value.Name} data marketplace as a contributor.
            Network: {network.Value.Name} (chain {network.Value.ChainId.ToString(CultureInfo.InvariantCulture)})
            Address: {parsed.ToLowerHex()}
            Nonce: {nonce}
            Expires: {expires.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture)}
            """;
        _challenges[message] = (parsed.ToLowerHex(), expires);
        return new LoginChallenge(message, expires);
    }

    /// <summary>A session for the address that signed an outstanding challenge, which is used up.</summary>
    public ContributorSession Login(string message, string signature)
    {
        var now = clock.GetUtcNow();
        if (!_challenges.TryRemove(message, out var challenge) || challenge.ExpiresAt <= now)
            throw new MarketRefusedException(StatusCodes.Status401Unauthorized, MarketReason.StaleChallenge, "This is not an outstanding challenge (unknown, used or expired); ask POST /v1/contributors/challenge for a new one.");
        var bytes = new byte[PersonalSign.SignatureSize];
        if (!(signature.StartsWith("0x", StringComparison.Ordinal) && Hex.TryDecode(signature.AsSpan(2), bytes))
            || PersonalSign.TryRecover(Encoding.UTF8.GetBytes(message), bytes, out var signer) != SignatureCheck.Valid)
            throw new MarketRefusedException(StatusCodes.Status401Unauthorized, MarketReason.BadSignature, "signature is not a valid EIP-191 signature (0x + 130 hex) of the challenge.");
        if (signer.ToLowerHex() != challenge.Address)
            throw new MarketRefusedException(StatusCodes.Status401Unauthorized, MarketReason.BadSignature, $"The challenge was signed by {signer.ToLowerHex()}, not by {challenge.Address}.");
        var token = SessionPrefix + Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var session = new ContributorSession(token, challenge.Address, now + SessionLifetime);
        _sessions[ApiKeys.Hash(token)] = (session.Address, session.ExpiresAt);
        return session;
    }

    /// <summary>The address a live session token stands for, or null.</summary>
    public string? Authenticate(string token) =>
        _sessions.TryGetValue(ApiKeys.Hash(token), out var session) && session.ExpiresAt > clock.GetUtcNow() ? session.Address : null;

    private void Sweep(DateTimeOffset now)
    {
        foreach (var (key, value) in _challenges) if (value.ExpiresAt <= now) _challenges.TryRemove(key, out _);
        foreach (var (key, value) in _sessions) if (value.ExpiresAt <= now) _sessions.TryRemove(key, out _);
    }
}
