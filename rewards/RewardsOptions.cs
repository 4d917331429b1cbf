using System.Numerics;
using Microsoft.Extensions.Options;
using Pipeline.Infra.Development;
using Pipeline.Infra.Postgres;
using Pipeline.Rewards.Epochs;

namespace Pipeline.Rewards;

/// <summary>
/// The rewards stage's settings, bound from "Rewards". The epoch length is the lake's (<c>Lake:EpochLength</c>): one
/// setting for device_quality, the marketplace's sales' epochs and the rewards.
/// </summary>
public sealed class RewardsOptions
{
    public const string Section = "Rewards";

    /// <summary>A policy JSON file; empty: the built-in policies/v1.json.</summary>
    public string? Policy { get; set; }

    /// <summary>How long after an epoch's end its data counts as final: readings still on their way, the processors and the lake catching up.</summary>
    public TimeSpan Grace { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>How often the leader looks for an epoch to close or a root to publish.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>The first epoch to close; empty: the epoch of the lake's earliest device_quality row.</summary>
    public long? FirstEpoch { get; set; }

    /// <summary>The reward files' folder; empty: exports/rewards in the data folder (rewards-&lt;schema&gt; for an event store in another schema).</summary>
    public string? Directory { get; set; }

    public string ResolveDirectory(string dataDirectory, string schema) =>
        Path.GetFullPath(string.IsNullOrWhiteSpace(Directory) ? Path.Combine(dataDirectory, "exports", "rewards" + SchemaSuffix(schema)) : Directory);

    /// <summary>
    /// Event stores in other schemas than the default (tests, a second network on one machine) close their own epochs:
    /// their reward files and contracts are kept apart from the default's, named after the schema.
    /// </summary>
    public static string SchemaSuffix(string schema) => schema == EventStoreOptions.DefaultSchema ? "" : "-" + schema;

    /// <summary>The policy in force: the named file, or the built-in v1.</summary>
    public RewardPolicy LoadPolicy()
    {
        if (!string.IsNullOrWhiteSpace(Policy)) return RewardPolicy.Load(Policy);
        using var stream = typeof(RewardsOptions).Assembly.GetManifestResourceStream("policies/v1.json")!;
        using var reader = new StreamReader(stream);
        return RewardPolicy.Parse(reader.ReadToEnd());
    }

    public IReadOnlyList<string> Errors()
    {
        var errors = new List<string>();
        if (Grace < TimeSpan.Zero) errors.Add("Rewards:Grace cannot be negative.");
        if (PollInterval <= TimeSpan.Zero) errors.Add("Rewards:PollInterval must be positive.");
        if (FirstEpoch is < 0) errors.Add("Rewards:FirstEpoch cannot be negative.");
        try
        {
            LoadPolicy();
        }
        catch (Exception e) when (e is RewardPolicyException or IOException or UnauthorizedAccessException)
        {
            errors.Add($"Rewards:Policy: {e.Message}");
        }
        return errors;
    }
}

/// <summary>
/// The chain the roots go to, bound from "Chain": <c>RpcUrl</c> (filled by the dev servers' anvil, or PIPELINE_CHAIN),
/// the operator's key that publishes, and the contracts — deployed once per chain and remembered in the data folder
/// unless their addresses are given.
/// </summary>
public sealed class ChainOptions
{
    public const string Section = DevServers.ChainSection;

    public string? RpcUrl { get; set; }

    /// <summary>Set by the dev servers when they started the chain: the API then tells browsers where it is.</summary>
    public bool Local { get; set; }

    /// <summary>The operator's private key (hex), owner of the distributor; empty on the local chain: anvil's first account.</summary>
    public string? OperatorKey { get; set; }

    /// <summary>The treasury's private key, to approve the distributor once; empty: the operator's key when the treasury is the operator.</summary>
    public string? TreasuryKey { get; set; }

    /// <summary>Deployed contracts to use as they are; all three, or none (deploy and remember them).</summary>
    public string? Token { get; set; }
    public string? Distributor { get; set; }
    public string? Payments { get; set; }

    /// <summary>Blocks a publishing transaction must be deep (1: mined) before it counts as published.</summary>
    public int Confirmations { get; set; } = 1;

    /// <summary>How long to wait for a sent transaction to be mined before looking at the chain again.</summary>
    public TimeSpan ReceiptTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>The reward token's supply minted to the treasury when the contracts are deployed here (base units).</summary>
    public string Supply { get; set; } = "1000000000000000000000000000";

    public string ResolveOperatorKey() =>
        !string.IsNullOrWhiteSpace(OperatorKey) ? OperatorKey
        : Local ? AnvilNode.DefaultAccountKey
        : throw new InvalidOperationException("Chain:OperatorKey is not set: the rewards stage needs the operator's key to publish roots on a chain it did not start.");

    public bool HasAddresses => !string.IsNullOrWhiteSpace(Token) && !string.IsNullOrWhiteSpace(Distributor) && !string.IsNullOrWhiteSpace(Payments);

    public IReadOnlyList<string> Errors()
    {
        var errors = new List<string>();
        if (string.IsNullOrWhiteSpace(RpcUrl)) errors.Add("Chain:RpcUrl must name the chain's JSON-RPC endpoint (PIPELINE_CHAIN), or let depin start anvil.");
        else if (!Uri.TryCreate(RpcUrl, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https")) errors.Add("Chain:RpcUrl must be an http(s) URL.");
        if (Confirmations < 1) errors.Add("Chain:Confirmations must be at least 1.");
        if (ReceiptTimeout <= TimeSpan.Zero) errors.Add("Chain:ReceiptTimeout must be positive.");
        var given = new[] { Token, Distributor, Payments }.Count(a => !string.IsNullOrWhiteSpace(a));
        if (given is not (0 or 3)) errors.Add("Chain:Token, Chain:Distributor and Chain:Payments go together: all three, or none to deploy them.");
        if (!BigInteger.TryParse(Supply, out var supply) || supply.Sign <= 0) errors.Add("Chain:Supply must be a positive integer of base units.");
        return errors;
    }
}

public sealed class RewardsOptionsValidation : IValidateOptions<RewardsOptions>, IValidateOptions<ChainOptions>
{
    public ValidateOptionsResult Validate(string? name, RewardsOptions options) => Result(options.Errors());

    public ValidateOptionsResult Validate(string? name, ChainOptions options) => Result(options.Errors());

    private static ValidateOptionsResult Result(IReadOnlyList<string> errors) => errors.Count > 0 ? ValidateOptionsResult.Fail(errors) : ValidateOptionsResult.Success;
}
