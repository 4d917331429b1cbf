namespace Pipeline.Rewards.Payments;

/// <summary>
/// One PaymentReceived log as the follower took it, kept for good (a Marten document, id "chainId:txHash:logIndex"):
/// the record that it was handled, so a log read twice is handled once, and the operator's list of payments that
/// credited nobody (<see cref="Status"/> "unattributed", with a <see cref="Reason"/>) — the tokens reached the treasury,
/// so someone must settle them by hand.
/// </summary>
public sealed class ChainPayment
{
    public const string Credited = "credited";
    public const string Unattributed = "unattributed";

    /// <summary>No buyer stream has this id (a typo, or a stranger's payment).</summary>
    public const string UnknownBuyer = "unknown_buyer";

    /// <summary>The amount is worth less than one credit.</summary>
    public const string BelowOneCredit = "below_one_credit";

    /// <summary>The amount is worth more credits than a balance can hold (more than 2^63 − 1).</summary>
    public const string TooManyCredits = "too_many_credits";

    public string Id { get; set; } = "";
    public long ChainId { get; set; }
    public string Contract { get; set; } = "";
    public string TxHash { get; set; } = "";
    public long LogIndex { get; set; }
    public long BlockNumber { get; set; }
    public string BlockHash { get; set; } = "";
    public string BuyerId { get; set; } = "";
    public string Payer { get; set; } = "";

    /// <summary>The token amount in base units, as decimal digits (it may exceed 64 bits).</summary>
    public string TokenAmount { get; set; } = "";

    public long Credits { get; set; }
    public string Status { get; set; } = "";
    public string? Reason { get; set; }
    public DateTimeOffset FollowedAt { get; set; }

    public static string Key(long chainId, string txHash, long logIndex) => $"{chainId}:{txHash.ToLowerInvariant()}:{logIndex}";
}

/// <summary>Where the follower stands on one chain and contract: stored in the same transaction as the payments it credited.</summary>
public sealed class PaymentsCursor
{
    public string Id { get; set; } = "";
    public Chain.LogCursor Cursor { get; set; } = Chain.LogCursor.StartAt(0);
    public DateTimeOffset UpdatedAt { get; set; }

    public static string Key(long chainId, string contract) => $"{chainId}:{contract.ToLowerInvariant()}";
}
