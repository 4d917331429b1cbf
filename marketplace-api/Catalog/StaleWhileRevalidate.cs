using Microsoft.Extensions.Logging;

namespace Pipeline.Marketplace.Catalog;

/// <summary>
/// The last value computed, handed out at once while at most one recompute runs in the background, started no sooner
/// than <paramref name="minimumInterval"/> after the previous one ended. Only callers before the first value wait, for
/// that one computation; a failed background recompute keeps the previous value, a failed first one is tried again by
/// the next caller. <paramref name="compute"/> gets the previous value, so it can hand it back when nothing changed.
/// </summary>
public sealed class StaleWhileRevalidate<T>(Func<T?, Task<T>> compute, TimeSpan minimumInterval, TimeProvider clock, ILogger logger) where T : class
{
    private readonly Lock _gate = new();
    private T? _current;
    private Task<T>? _running;
    private DateTimeOffset _lastEnded = DateTimeOffset.MinValue;

    /// <summary>The last value computed, if any, without starting a computation.</summary>
    public T? Current
    {
        get
        {
            lock (_gate) return _current;
        }
    }

    public Task<T> GetAsync(CancellationToken cancellation)
    {
        lock (_gate)
        {
            if (_current is { } current)
            {
                if (_running is null && clock.GetUtcNow() - _lastEnded >= minimumInterval) _running = RunAsync(current);
                return Task.FromResult(current);
            }
            _running ??= RunAsync(null);
            // A caller who leaves does not cancel the computation: the others, and the next caller, still want it.
            return _running.WaitAsync(cancellation);
        }
    }

    // Task.Run: the caller holding the gate returns before the computation's first line runs (and its end takes the gate).
    private Task<T> RunAsync(T? previous) => Task.Run(async () =>
    {
        try
        {
            var next = await compute(previous);
            lock (_gate) _current = next;
            return next;
        }
        catch (Exception e) when (previous is not null)
        {
            logger.LogWarning(e, "Recomputing failed; answering from the previous value until the next try");
            return previous;
        }
        finally
        {
            lock (_gate)
            {
                _running = null;
                _lastEnded = clock.GetUtcNow();
            }
        }
    });
}
