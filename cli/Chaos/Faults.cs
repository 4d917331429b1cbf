using Pipeline.Infra.Development;

namespace Pipeline.Cli.Chaos;

/// <summary>
/// The faults, one at a time at random intervals: a stage killed (SIGKILL or SIGTERM; its supervisor starts it again),
/// PostgreSQL stopped (fast or immediate) and started again, or brokers taken down (one, or all) and brought back.
/// Each fault is over (servers back up) before the next, and when the run ends.
/// </summary>
public sealed class Faults(Random random, IReadOnlyList<StageProcess> stages, LocalPostgres postgres, string postgresDirectory, EmbeddedKafka kafka, ChaosReport report)
{
    public async Task RunAsync(DateTime end, CancellationToken cancellation)
    {
        while (true)
        {
            var pause = TimeSpan.FromMilliseconds(random.Next(2_000, 7_000));
            if (DateTime.UtcNow + pause >= end) break;
            await Task.Delay(pause, cancellation);
            var roll = random.NextDouble();
            if (roll < 0.6) Kill();
            else if (roll < 0.8) await RestartPostgresAsync(cancellation);
            else await BrokerOutageAsync(cancellation);
        }
    }

    private void Kill()
    {
        var stage = stages[random.Next(stages.Count)];
        var signal = random.Next(2) == 0 ? Signals.Kill : Signals.Term;
        if (stage.Signal(signal)) report.AddKill(signal, stage.Name);
    }

    /// <summary>pg_ctl's fast stop (clients disconnected, a clean shutdown), or an immediate one (SIGQUIT: no checkpoint, crash recovery at the next start).</summary>
    private async Task RestartPostgresAsync(CancellationToken cancellation)
    {
        if (random.Next(2) == 0) await postgres.StopAsync();
        else await StopImmediatelyAsync(cancellation);
        await Task.Delay(TimeSpan.FromMilliseconds(random.Next(500, 3_000)), cancellation);
        await postgres.StartAsync(CancellationToken.None);
        report.AddPostgresRestart();
    }

    /// <summary>What `pg_ctl stop -m immediate` does: SIGQUIT to the postmaster, then wait for it to be gone.</summary>
    private async Task StopImmediatelyAsync(CancellationToken cancellation)
    {
        var pidFile = Path.Combine(postgresDirectory, "postmaster.pid");
        if (!int.TryParse(File.ReadLines(pidFile).First(), out var pid)) throw new InvalidOperationException($"{pidFile} names no process.");
        Signals.Send(pid, Signals.Quit);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (Signals.Send(pid, 0))
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"PostgreSQL (PID {pid}) did not stop within 30 s of SIGQUIT.");
            await Task.Delay(50, cancellation);
        }
    }

    /// <summary>One broker (the others lead in its place) or all of them (producers and consumers wait) for a few seconds.</summary>
    private async Task BrokerOutageAsync(CancellationToken cancellation)
    {
        var broker = random.Next(2) == 0 ? -1 : random.Next(1, kafka.Brokers + 1);
        kafka.SetBrokerDown(broker);
        try
        {
            await Task.Delay(TimeSpan.FromMilliseconds(random.Next(2_000, 8_000)), cancellation);
        }
        finally
        {
            kafka.SetBrokerUp(broker);
        }
        report.AddBrokerOutage();
    }

}
