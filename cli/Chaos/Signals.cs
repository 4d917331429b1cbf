using System.Runtime.InteropServices;

namespace Pipeline.Cli.Chaos;

/// <summary>POSIX signals to other processes (.NET itself sends only SIGKILL).</summary>
public static partial class Signals
{
    public const int Quit = 3;
    public const int Kill = 9;
    public const int Term = 15;

    /// <summary>True when the signal was delivered; signal 0 only asks whether the process exists.</summary>
    public static bool Send(int pid, int signal) => SendNative(pid, signal) == 0;

    public static string Name(int signal) => signal switch { Quit => "SIGQUIT", Kill => "SIGKILL", Term => "SIGTERM", _ => $"signal {signal}" };

    [LibraryImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static partial int SendNative(int pid, int signal);
}
