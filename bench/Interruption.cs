using System.Diagnostics;
using System.Runtime.InteropServices;

namespace Pipeline.Bench;

/// <summary>
/// Ctrl-C (SIGINT) and SIGTERM as a cancellation token for the whole run. The process does not end on the signal: every
/// wait of a bench ends on the token and unwinds, so what it started (PostgreSQL, stage processes, the simulator, a load
/// process) is stopped on the way out. A host a bench runs in-process would otherwise take the signal for itself and
/// stop, leaving the bench waiting on it.
/// </summary>
public sealed class Interruption : IDisposable
{
    private readonly CancellationTokenSource _source = new();
    private readonly PosixSignalRegistration[] _registrations;
    private int _signal;

    public Interruption() =>
        _registrations = [PosixSignalRegistration.Create(PosixSignal.SIGINT, Handle), PosixSignalRegistration.Create(PosixSignal.SIGTERM, Handle)];

    public CancellationToken Token => _source.Token;

    /// <summary>The signal's name, once one came.</summary>
    public string? Signal => _signal switch { 2 => "Ctrl-C (SIGINT)", 15 => "SIGTERM", _ => null };

    /// <summary>What a shell expects of a process ended by the signal: 128 + its number.</summary>
    public int ExitCode => 128 + _signal;

    /// <summary>Kills a child process when the run is stopped: the run ends without figures, so what it would still do does not matter.</summary>
    public static CancellationTokenRegistration KillOnStop(Process process, CancellationToken stop) => stop.Register(() =>
    {
        try
        {
            process.Kill();
        }
        catch (InvalidOperationException)
        {
            // ended meanwhile
        }
    });

    private void Handle(PosixSignalContext context)
    {
        context.Cancel = true;
        Interlocked.CompareExchange(ref _signal, context.Signal == PosixSignal.SIGINT ? 2 : 15, 0);
        _source.Cancel();
    }

    public void Dispose()
    {
        foreach (var registration in _registrations) registration.Dispose();
        _source.Dispose();
    }
}
