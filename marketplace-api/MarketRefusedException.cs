namespace Pipeline.Marketplace;

/// <summary>A request the marketplace refuses: the status, a reason code from <see cref="MarketReason"/>, and what to do.</summary>
public sealed class MarketRefusedException(int status, string reason, string message) : Exception(message)
{
    public int Status { get; } = status;
    public string Reason { get; } = reason;
}
