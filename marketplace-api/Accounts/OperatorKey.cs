using Pipeline.Core.Files;

namespace Pipeline.Marketplace.Accounts;

/// <summary>
/// The operator's key, kept as its SHA-256 in a 0600 file (under the data folder unless configured elsewhere). It is
/// made the first time the marketplace starts with none, and shown only then: whoever starts `depin up` first sees it.
/// </summary>
public sealed class OperatorKey(string path)
{
    public string Path { get; } = path;

    /// <summary>Makes a key when the file does not exist and returns it (the only time it can be read); null when one exists.</summary>
    public string? CreateIfMissing()
    {
        if (File.Exists(Path))
        {
            SecretFile.Protect(Path);
            return null;
        }
        SecretFile.CreateFolder(System.IO.Path.GetDirectoryName(Path)!);
        var key = ApiKeys.NewOperatorKey();
        SecretFile.Write(Path, ApiKeys.Hash(key) + "\n");
        return key;
    }

    /// <summary>Whether <paramref name="key"/> is the operator's key.</summary>
    public bool Matches(string key) => File.Exists(Path) && ApiKeys.Matches(key, File.ReadAllText(Path).Trim());
}
