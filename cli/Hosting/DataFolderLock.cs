using Pipeline.Core.Files;
using Pipeline.Infra.Development;

namespace Pipeline.Cli.Hosting;

/// <summary>
/// Who owns a data folder and the servers started from it: `depin up`, `depin reset` and `depin lake rebuild --replace`
/// hold <c>.data/depin.lock</c> (an OS-level lock naming their pid and command) while they run, so a second one refuses
/// at once, before it touches anything, instead of stopping or deleting what the first one uses.
/// </summary>
public static class DataFolderLock
{
    public const string FileName = "depin.lock";

    /// <summary>Takes the folder's lock, or throws with one line naming the holder and <paramref name="whatToDo"/>.</summary>
    public static LockFile Acquire(string dataDirectory, Func<string, string> whatToDo)
    {
        var path = Path.Combine(dataDirectory, FileName);
        return LockFile.TryAcquire(path, out var holder)
            ?? throw new InvalidOperationException($"{holder} is running on {dataDirectory}; {whatToDo(holder)}.");
    }

    /// <summary>
    /// Whether the last holder was killed with the local PostgreSQL it started still running, so the next owner adopts
    /// it (and stops it) rather than leaving it to run on with nobody responsible for it.
    /// </summary>
    public static bool LeftPostgresRunning(LockFile folder) => folder.Previous.TryGetValue("postgres", out var state) && state == "started";

    /// <summary>Records what the holder started, for whoever takes the folder over after a crash.</summary>
    public static void NoteStarted(LockFile folder, DevServers servers)
    {
        if (servers.OwnsLocalPostgres) folder.Note("postgres", "started");
    }
}
