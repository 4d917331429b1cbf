using System.Collections.Concurrent;

namespace Pipeline.Simulator;

/// <summary>Live counters of a run, read by the progress display and the summary.</summary>
public sealed class SimulationStats
{
    private long _sent;
    private long _acknowledged;
    private long _retried;
    private long _registered;

    public long Sent => Interlocked.Read(ref _sent);
    public long Acknowledged => Interlocked.Read(ref _acknowledged);
    public long Retried => Interlocked.Read(ref _retried);
    public long Registered => Interlocked.Read(ref _registered);
    public ConcurrentDictionary<string, long> RefusedByReason { get; } = new();
    public long Refused => RefusedByReason.Values.Sum();

    public void AddSent(int count) => Interlocked.Add(ref _sent, count);
    public void AddAcknowledged(int count) => Interlocked.Add(ref _acknowledged, count);
    public void AddRetried(int count) => Interlocked.Add(ref _retried, count);
    public void AddRegistered() => Interlocked.Increment(ref _registered);
    public void Refuse(string reason) => RefusedByReason.AddOrUpdate(reason, 1, (_, n) => n + 1);
    /// <summary>Batches a sender could not deliver, by error, for the summary.</summary>
    public ConcurrentDictionary<string, long> Failures { get; } = new();

    /// <summary>Connection errors a sender recovered from by sending again.</summary>
    public ConcurrentDictionary<string, long> Recovered { get; } = new();

    public void Fail(Exception e, bool retried = false) =>
        (retried ? Recovered : Failures).AddOrUpdate($"{e.GetType().Name}: {e.Message} (at {e.StackTrace?.Split('\n').FirstOrDefault()?.Trim()})", 1, (_, n) => n + 1);
}
