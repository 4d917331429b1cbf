using System.Collections.Concurrent;
using Microsoft.Extensions.Logging.Abstractions;
using Pipeline.Marketplace.Catalog;

namespace Pipeline.Tests.Unit.Marketplace;

/// <summary>The catalog's refresh logic (issue 15: catalog pages under 300 ms while a fleet sends), with computations the test releases by hand.</summary>
public sealed class StaleWhileRevalidateTests
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(5);
    private readonly HandClock _clock = new();
    private readonly ConcurrentQueue<TaskCompletionSource<string>> _computations = new();
    private int _started;

    private StaleWhileRevalidate<string> Create() => new(_ =>
    {
        var computation = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        _computations.Enqueue(computation);
        Interlocked.Increment(ref _started);
        return computation.Task;
    }, Interval, _clock, NullLogger.Instance);

    [Fact]
    public async Task GetAsync_DuringARecompute_IsAnsweredFromThePreviousValueWithoutWaiting_Issue15()
    {
        var latest = Create();
        var first = latest.GetAsync(CancellationToken.None);
        (await NextComputationAsync()).SetResult("checkpoint 1");
        Assert.Equal("checkpoint 1", await first);

        _clock.Now += Interval;
        var during = latest.GetAsync(CancellationToken.None);
        var recompute = await NextComputationAsync();
        var alsoDuring = latest.GetAsync(CancellationToken.None);

        Assert.True(during.IsCompletedSuccessfully && alsoDuring.IsCompletedSuccessfully, "answered while the recompute is still running");
        Assert.Equal(["checkpoint 1", "checkpoint 1"], await Task.WhenAll(during, alsoDuring));
        Assert.Equal(2, Volatile.Read(ref _started)); // one recompute at a time

        recompute.SetResult("checkpoint 2");
        Assert.Equal("checkpoint 2", await UntilAsync(latest, "checkpoint 2"));
    }

    [Fact]
    public async Task GetAsync_BeforeTheFirstValue_EveryCallerWaitsForTheOneFirstComputation()
    {
        var latest = Create();
        var one = latest.GetAsync(CancellationToken.None);
        var two = latest.GetAsync(CancellationToken.None);
        var computation = await NextComputationAsync();
        Assert.False(one.IsCompleted || two.IsCompleted);

        computation.SetResult("checkpoint 1");
        Assert.Equal(["checkpoint 1", "checkpoint 1"], await Task.WhenAll(one, two));
        Assert.Equal(1, Volatile.Read(ref _started));
    }

    [Fact]
    public async Task GetAsync_AfterAFailedFirstComputation_TriesAgain_AndAFailedRecomputeKeepsThePreviousValue()
    {
        var latest = Create();
        var failed = latest.GetAsync(CancellationToken.None);
        (await NextComputationAsync()).SetException(new InvalidOperationException("lake unreachable"));
        await Assert.ThrowsAsync<InvalidOperationException>(() => failed);

        var retried = latest.GetAsync(CancellationToken.None);
        (await NextComputationAsync()).SetResult("checkpoint 1");
        Assert.Equal("checkpoint 1", await retried);

        _clock.Now += Interval;
        Assert.Equal("checkpoint 1", await latest.GetAsync(CancellationToken.None));
        (await NextComputationAsync()).SetException(new InvalidOperationException("lake unreachable"));
        // Once the failed recompute has ended a new one may start; every answer meanwhile is the previous value.
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (_computations.IsEmpty)
        {
            _clock.Now += Interval;
            Assert.Equal("checkpoint 1", await latest.GetAsync(CancellationToken.None));
            await Task.Delay(1, timeout.Token);
        }
        (await NextComputationAsync()).SetResult("checkpoint 2");
        Assert.Equal("checkpoint 2", await UntilAsync(latest, "checkpoint 2"));
    }

    /// <summary>The computation the refresher started next (it starts on the thread pool).</summary>
    private async Task<TaskCompletionSource<string>> NextComputationAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        TaskCompletionSource<string>? next;
        while (!_computations.TryDequeue(out next)) await Task.Delay(1, timeout.Token);
        return next;
    }

    /// <summary>Asks until the finished recompute's value is handed out (it is published on the thread pool).</summary>
    private static async Task<string> UntilAsync(StaleWhileRevalidate<string> latest, string expected)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        string value;
        while ((value = await latest.GetAsync(timeout.Token)) != expected) await Task.Delay(1, timeout.Token);
        return value;
    }

    private sealed class HandClock : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = new(2026, 12, 5, 12, 0, 0, TimeSpan.Zero);
        public override DateTimeOffset GetUtcNow() => Now;
    }
}
