using Pipeline.Core.Envelope;

namespace Pipeline.Core.Events;

// Events are facts in the past tense. Their wire names (EventNames) are versioned and independent of these CLR
// names; change a shape by adding a new version, never by editing one that is stored.

/// <summary>Owner and device both signed the registration (EIP-712 typed data, kept in Message); the device may now contribute.</summary>
public sealed record DeviceRegistered(
    string Device,
    string Owner,
    DeviceKind Kind,
    IReadOnlyDictionary<string, string> Metadata,
    string Message,
    string OwnerSignature,
    string DeviceSignature,
    DateTimeOffset RegisteredAt);

/// <summary>The current and the new owner both signed the transfer (EIP-712 typed data, kept in Message).</summary>
public sealed record OwnershipTransferred(
    string Device,
    string PreviousOwner,
    string NewOwner,
    string Message,
    string PreviousOwnerSignature,
    string NewOwnerSignature,
    DateTimeOffset TransferredAt);

/// <summary>A reading the device really signed and that passed every check, with its decoded signals in VSS units.</summary>
public sealed record ReadingAccepted(
    string ReadingId,
    long Seq,
    DateTimeOffset DeviceTime,
    DateTimeOffset ReceivedAt,
    IReadOnlyDictionary<string, double> Signals,
    int Partition,
    long Offset);

/// <summary>A reading the device really signed that failed a check; the payload stays out of the store.</summary>
public sealed record ReadingRejected(
    string ReadingId,
    long Seq,
    string Reason,
    string Detail,
    DateTimeOffset ReceivedAt,
    int Partition,
    long Offset);

/// <summary>The versioned wire name of every event type, shared by every stage that reads or writes events.</summary>
public static class EventNames
{
    public static IReadOnlyDictionary<Type, string> All { get; } = new Dictionary<Type, string>
    {
        [typeof(DeviceRegistered)] = "device_registered.v1",
        [typeof(OwnershipTransferred)] = "ownership_transferred.v1",
        [typeof(ReadingAccepted)] = "reading_accepted.v1",
        [typeof(ReadingRejected)] = "reading_rejected.v1",
        [typeof(BuyerCreated)] = "buyer_created.v1",
        [typeof(ApiKeyIssued)] = "api_key_issued.v1",
        [typeof(ApiKeyRevoked)] = "api_key_revoked.v1",
        [typeof(CreditsAdded)] = "credits_added.v1",
        [typeof(PaymentReceived)] = "payment_received.v1",
        [typeof(GrantPurchased)] = "grant_purchased.v1",
        [typeof(QueryCharged)] = "query_charged.v1",
        [typeof(ExportCharged)] = "export_charged.v1",
        [typeof(FeedCharged)] = "feed_charged.v1",
        [typeof(DataSold)] = "data_sold.v1",
        [typeof(SalesAttributed)] = "sales_attributed.v1",
        [typeof(EpochClosed)] = "epoch_closed.v1",
        [typeof(RewardsCalculated)] = "rewards_calculated.v1",
        [typeof(RootPublishRequested)] = "root_publish_requested.v1",
        [typeof(RootPublished)] = "root_published.v1",
    };
}
