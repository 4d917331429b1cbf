namespace Pipeline.Core.Events;

// The marketplace's facts, one stream per buyer (its id, "0x" + 64 hex digits, is the bytes32 the Payments contract
// names). Credits are whole units; nothing here is a floating-point amount of money.

/// <summary>The operator opened an account for a buyer.</summary>
public sealed record BuyerCreated(string BuyerId, string Name, DateTimeOffset CreatedAt);

/// <summary>A buyer API key was issued; only its SHA-256 is kept (the key was shown once).</summary>
public sealed record ApiKeyIssued(string BuyerId, string KeyId, string KeyHash, string Label, DateTimeOffset IssuedAt);

/// <summary>A buyer API key stops working from now on.</summary>
public sealed record ApiKeyRevoked(string BuyerId, string KeyId, DateTimeOffset RevokedAt);

/// <summary>The operator added credits to a buyer's balance (an invoice paid off chain, a trial, a refund).</summary>
public sealed record CreditsAdded(string BuyerId, long Credits, string Note, DateTimeOffset AddedAt);

/// <summary>
/// A buyer paid on chain (the Payments contract's PaymentReceived log, followed with confirmations); counted once per
/// (ChainId, TxHash, LogIndex). TokenAmount is the token's integer amount in decimal digits (it may exceed 64 bits).
/// </summary>
public sealed record PaymentReceived(string BuyerId, long ChainId, string TxHash, long LogIndex, string Payer, string TokenAmount, long Credits, long BlockNumber);

/// <summary>
/// A buyer bought a grant: rows of one dataset in device time [From, Until) — Until null for a subscription, whose
/// RowQuota is per calendar month (UTC) — optionally in a box and only of some devices, until ExpiresAt, for Credits.
/// ByteQuota (bytes delivered, per month for a subscription; null: no byte limit) was paid with ByteCredits of those Credits;
/// both added later, so events stored before them read as null and 0.
/// </summary>
public sealed record GrantPurchased(
    string BuyerId,
    string GrantId,
    string Dataset,
    DateTimeOffset From,
    DateTimeOffset? Until,
    double? South,
    double? West,
    double? North,
    double? East,
    IReadOnlyList<string>? Devices,
    string? Make,
    long RowQuota,
    DateTimeOffset ExpiresAt,
    long Credits,
    DateTimeOffset PurchasedAt,
    long? ByteQuota = null,
    long ByteCredits = 0);

/// <summary>A query delivered Rows (Bytes) of a grant, read at LakeCheckpoint; Credits is the share of the grant's price those rows used.</summary>
public sealed record QueryCharged(string BuyerId, string GrantId, string ChargeId, long Rows, long Bytes, long Credits, long LakeCheckpoint, DateTimeOffset ChargedAt);

/// <summary>An export delivered Rows (Bytes) of a grant.</summary>
public sealed record ExportCharged(string BuyerId, string GrantId, string ChargeId, string ExportId, long Rows, long Bytes, long Credits, long LakeCheckpoint, DateTimeOffset ChargedAt);

/// <summary>A subscription's live feed delivered Rows (Bytes) of a grant.</summary>
public sealed record FeedCharged(string BuyerId, string GrantId, string ChargeId, long Rows, long Bytes, long Credits, long LakeCheckpoint, DateTimeOffset ChargedAt);

/// <summary>
/// What one charge sold: per device and epoch (device time ÷ epoch length), the rows it delivered and the credits they
/// earned; the lines add up exactly to the charge's rows and credits. The rewards stage shares revenue with owners from
/// these. One event per charge, whatever the number of devices: an aggregate over a slice sells every device's rows.
/// </summary>
public sealed record SalesAttributed(string Dataset, string GrantId, string ChargeId, IReadOnlyList<SoldRows> Lines);

/// <summary>Of one charge, the rows of one device in one epoch and the credits they earned.</summary>
public sealed record SoldRows(string Device, long Epoch, long Rows, long Credits);

/// <summary>
/// A charge's sale as first written, one event per device and epoch. No longer written; a running network holds it from
/// before <see cref="SalesAttributed"/> (under this CLR name, which Marten stores beside the wire name), so every reader
/// of sales reads both, this one as <see cref="AsAttribution"/>.
/// </summary>
public sealed record DataSold(string Device, long Epoch, string Dataset, long Rows, long Credits, string GrantId, string ChargeId)
{
    public SalesAttributed AsAttribution() => new(Dataset, GrantId, ChargeId, [new SoldRows(Device, Epoch, Rows, Credits)]);
}
