using Marten;
using Marten.Events.Projections;
using Pipeline.Core.Events;

namespace Pipeline.Marketplace.Accounts;

/// <summary>
/// An on-chain payment counted in a buyer's balance, a document of its own (id "chainId:txHash:logIndex"). It is
/// inserted in the transaction that appends the <see cref="PaymentReceived"/>, so the same payment appended again fails
/// that insert and its whole append: counted once, without the account carrying a list of every payment it ever took.
/// </summary>
public sealed class CountedPayment
{
    public string Id { get; set; } = "";
    public string BuyerId { get; set; } = "";
    public long Credits { get; set; }
    public long BlockNumber { get; set; }

    public static string Key(long chainId, string txHash, long logIndex) => $"{chainId}:{txHash.ToLowerInvariant()}:{logIndex}";

    public static CountedPayment Of(PaymentReceived paid) =>
        new() { Id = Key(paid.ChainId, paid.TxHash, paid.LogIndex), BuyerId = paid.BuyerId, Credits = paid.Credits, BlockNumber = paid.BlockNumber };
}

/// <summary>Inserts (never stores over) a <see cref="CountedPayment"/> per payment appended.</summary>
public sealed partial class CountedPaymentProjection : EventProjection
{
    public void Project(PaymentReceived paid, IDocumentOperations operations) => operations.Insert(CountedPayment.Of(paid));
}
