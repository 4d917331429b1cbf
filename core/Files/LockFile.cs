using System.Globalization;
using System.Text;

namespace Pipeline.Core.Files;

/// <summary>
/// An exclusive, OS-level lock on a file that names its holder: pid, command line and start time, plus notes the holder
/// adds (such as "postgres=started"). The lock is an fcntl record lock, so it ends with the process however the process
/// ends — a SIGKILLed holder releases it at once — while the text stays: the next holder reads in
/// <see cref="Previous"/> what a holder that did not release cleanly left behind. A clean release empties the file.
/// </summary>
public sealed class LockFile : IDisposable
{
    // fcntl locks belong to a process, not to a file handle: a second acquisition in this process would succeed and
    // closing its handle would drop the first one's lock. So this process's holders are tracked here, by path.
    private static readonly Dictionary<string, string> HeldHere = [];

    private readonly FileStream _stream;
    private readonly StringBuilder _text;

    private LockFile(string path, FileStream stream, string text, string previous)
    {
        Path = path;
        _stream = stream;
        _text = new StringBuilder(text);
        Previous = HolderText.Parse(previous);
    }

    public string Path { get; }

    /// <summary>What the file said when this holder took it: empty after a clean release, else the last holder's text.</summary>
    public IReadOnlyDictionary<string, string> Previous { get; }

    /// <summary>Takes the lock, or returns null and who holds it ("depin up (pid 4242)").</summary>
    public static LockFile? TryAcquire(string path, out string holder)
    {
        path = System.IO.Path.GetFullPath(path);
        var text = HolderText.ForThisProcess();
        lock (HeldHere)
        {
            if (HeldHere.TryGetValue(path, out var mine))
            {
                holder = HolderText.Describe(HolderText.Parse(mine));
                return null;
            }
            // macOS has no FileStream.Lock; the pipeline runs on Linux.
            if (OperatingSystem.IsMacOS()) throw new PlatformNotSupportedException("Lock files need fcntl record locks (Linux).");
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(path)!);
            var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete);
            try
            {
                stream.Lock(0, 1);
            }
            catch (IOException)
            {
                holder = HolderText.Describe(HolderText.Parse(ReadAll(stream)));
                stream.Dispose();
                return null;
            }
            var previous = ReadAll(stream);
            var acquired = new LockFile(path, stream, text, previous);
            acquired.Write();
            HeldHere[path] = text;
            holder = "";
            return acquired;
        }
    }

    /// <summary>Adds "key=value" to the holder's text, for whoever takes the lock after a crash.</summary>
    public void Note(string key, string value)
    {
        lock (HeldHere)
        {
            _text.Append(CultureInfo.InvariantCulture, $"{key}={value}\n");
            Write();
            HeldHere[Path] = _text.ToString();
        }
    }

    public void Dispose()
    {
        lock (HeldHere)
        {
            if (!HeldHere.Remove(Path)) return;
            // Emptied before the lock goes: the next holder sees a clean release.
            _stream.SetLength(0);
            _stream.Flush(flushToDisk: true);
            _stream.Dispose();
        }
    }

    private void Write()
    {
        var bytes = Encoding.UTF8.GetBytes(_text.ToString());
        _stream.SetLength(0);
        _stream.Position = 0;
        _stream.Write(bytes);
        _stream.Flush(flushToDisk: true);
    }

    private static string ReadAll(FileStream stream)
    {
        stream.Position = 0;
        using var reader = new StreamReader(stream, Encoding.UTF8, detectEncodingFromByteOrderMarks: false, leaveOpen: true);
        return reader.ReadToEnd();
    }
}

/// <summary>The "key=value" lines a lock file holds about its holder.</summary>
public static class HolderText
{
    public static string ForThisProcess()
    {
        var command = string.Join(' ', Environment.GetCommandLineArgs().Skip(1).Prepend("depin"));
        return string.Create(CultureInfo.InvariantCulture, $"pid={Environment.ProcessId}\ncommand={command}\nstarted={DateTimeOffset.UtcNow:yyyy-MM-ddTHH:mm:ssZ}\n");
    }

    public static IReadOnlyDictionary<string, string> Parse(string text) =>
        text.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split('=', 2))
            .Where(parts => parts.Length == 2)
            .GroupBy(parts => parts[0], parts => parts[1])
            .ToDictionary(g => g.Key, g => g.Last());

    /// <summary>"depin up --api-port 6080 (pid 4242)", or "another process" when the holder has not written its text yet.</summary>
    public static string Describe(IReadOnlyDictionary<string, string> holder) =>
        holder.TryGetValue("pid", out var pid)
            ? $"{(holder.TryGetValue("command", out var command) ? command : "a process")} (pid {pid})"
            : "another process";
}
