namespace Pipeline.Simulator.Senders;

/// <summary>Sends a batch of readings and marks each ledger entry with what the edge answered.</summary>
public interface IReadingSender : IAsyncDisposable
{
    Task SendAsync(IReadOnlyList<Outgoing> batch, CancellationToken cancellation);
}
