using System.Diagnostics;

namespace Pipeline.Bench;

/// <summary>A throughput figure: operations over elapsed time, after a warm-up.</summary>
public readonly record struct Throughput(string Name, long Operations, TimeSpan Elapsed)
{
    public double PerSecond => Operations / Elapsed.TotalSeconds;
}

public static class Measure
{
    /// <summary>Runs <paramref name="operation"/> (which performs a batch and returns its size) for about the given time.</summary>
    public static Throughput For(string name, TimeSpan duration, Func<int> operation)
    {
        var warmUp = Stopwatch.StartNew();
        while (warmUp.Elapsed < TimeSpan.FromMilliseconds(300)) operation();

        long operations = 0;
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < duration) operations += operation();
        return new Throughput(name, operations, clock.Elapsed);
    }
}
