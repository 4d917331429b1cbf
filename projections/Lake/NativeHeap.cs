using System.Runtime.InteropServices;

namespace Pipeline.Projections.Lake;

/// <summary>
/// glibc's allocator, which ParquetSharp's native code and zstd take most of their memory from outside Arrow's pools.
/// </summary>
internal static partial class NativeHeap
{
    /// <summary>
    /// Hands the free pages of every arena back to the kernel. glibc returns only the free memory at the top of its main
    /// heap by itself; what compaction's readers and writer freed in the middle of a thread's arena stayed resident
    /// (issue 16). A no-op where the C library has no malloc_trim (not glibc).
    /// </summary>
    public static void Trim()
    {
        if (!OperatingSystem.IsLinux()) return;
        try
        {
            _ = malloc_trim(0);
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
        }
    }

    [LibraryImport("libc", EntryPoint = "malloc_trim")]
    private static partial int malloc_trim(nuint pad);
}
