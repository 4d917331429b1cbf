using Pipeline.Core.Crypto;
using Pipeline.Core.Files;

namespace Pipeline.Marketplace.ExportJobs;

/// <summary>
/// The marketplace's own key, which signs export manifests (EIP-191): made at first use and kept in a 0600 file, so its
/// address — published at GET /v1/marketplace — stays the same across restarts.
/// </summary>
public sealed class MarketSigner(string path)
{
    private readonly Lazy<EthKey> _key = new(() => LoadOrCreate(path));

    public EthKey Key => _key.Value;

    private static EthKey LoadOrCreate(string path)
    {
        if (File.Exists(path))
        {
            SecretFile.Protect(path);
            return EthKey.FromHex(File.ReadAllText(path).Trim());
        }
        SecretFile.CreateFolder(Path.GetDirectoryName(path)!);
        var key = EthKey.Generate();
        SecretFile.Write(path, key.ToHex() + "\n");
        return key;
    }
}
