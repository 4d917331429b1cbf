using Pipeline.Rewards.Epochs;

namespace Pipeline.Rewards.Stage;

/// <summary>
/// The reward files of the stage's epochs in one folder: <c>epoch-N.json</c> (canonical; its keccak256 is the content
/// hash published with the root) and its two Parquet files. Written whole or not at all: into a temporary folder
/// beside them, synced to disk, then renamed into place, the JSON last.
/// </summary>
public sealed class RewardFiles(string directory)
{
    public string Directory => directory;

    public string JsonPath(long epoch) => Path.Combine(directory, $"epoch-{epoch}.json");

    public string Write(RewardFile file)
    {
        System.IO.Directory.CreateDirectory(directory);
        var staging = Path.Combine(directory, $".staging-{file.Rewards.Epoch}-{Guid.NewGuid():N}");
        try
        {
            var written = file.Write(staging);
            var names = System.IO.Directory.GetFiles(staging).Select(Path.GetFileName).OrderBy(n => n!.EndsWith(".json", StringComparison.Ordinal)).ToList();
            foreach (var name in names)
            {
                using (var stream = new FileStream(Path.Combine(staging, name!), FileMode.Open, FileAccess.ReadWrite)) stream.Flush(flushToDisk: true);
            }
            foreach (var name in names) File.Move(Path.Combine(staging, name!), Path.Combine(directory, name!), overwrite: true);
            return Path.Combine(directory, Path.GetFileName(written));
        }
        finally
        {
            if (System.IO.Directory.Exists(staging)) System.IO.Directory.Delete(staging, recursive: true);
        }
    }

    /// <summary>The bytes of the epoch's file as written, or null when there is none; <see cref="RewardFile.Parse"/> refuses one not in canonical form.</summary>
    public byte[]? ReadBytes(long epoch) => File.Exists(JsonPath(epoch)) ? File.ReadAllBytes(JsonPath(epoch)) : null;
}
