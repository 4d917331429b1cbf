namespace Pipeline.Core.Files;

/// <summary>Files that hold keys or passwords: readable and writable by their owner only (0600), in folders only the owner enters (0700).</summary>
public static class SecretFile
{
    private const UnixFileMode OwnerOnly = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode OwnerOnlyFolder = OwnerOnly | UnixFileMode.UserExecute;

    /// <summary>Writes the text whole (to a temporary file, then renamed over the old one), 0600 from the first byte.</summary>
    public static void Write(string path, string text)
    {
        var temporary = path + ".tmp";
        File.Delete(temporary);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = OwnerOnly;
        using (var stream = new FileStream(temporary, options))
        using (var writer = new StreamWriter(stream))
        {
            writer.Write(text);
        }
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>Creates the folder 0700, or narrows an existing one to it.</summary>
    public static void CreateFolder(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
            return;
        }
        Directory.CreateDirectory(path, OwnerOnlyFolder);
        if (File.GetUnixFileMode(path) != OwnerOnlyFolder) File.SetUnixFileMode(path, OwnerOnlyFolder);
    }

    /// <summary>Narrows a file written before secrets were kept this way.</summary>
    public static void Protect(string path)
    {
        if (!OperatingSystem.IsWindows() && File.Exists(path) && File.GetUnixFileMode(path) != OwnerOnly) File.SetUnixFileMode(path, OwnerOnly);
    }
}
