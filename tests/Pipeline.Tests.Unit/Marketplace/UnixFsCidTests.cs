using Pipeline.Marketplace.Exports;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Unit.Marketplace;

/// <summary>Our CIDs against the IPFS importer from npm, on sizes that cross every boundary of the layout.</summary>
public sealed class UnixFsCidTests
{
    [Fact]
    public void Cid_EmptyFile_IsTheWellKnownEmptyRawLeaf()
    {
        Assert.Equal("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", UnixFsCid.Compute([]));
    }

    [Fact]
    public void Base32_Rfc4648Vectors_EncodeLowercaseUnpadded()
    {
        Assert.Equal("", UnixFsCid.Base32(""u8));
        Assert.Equal("my", UnixFsCid.Base32("f"u8));
        Assert.Equal("mzxw6ytboi", UnixFsCid.Base32("foobar"u8));
    }

    [Fact]
    public void Cid_FilesAroundChunkAndFanoutBoundaries_EqualTheIpfsImporters()
    {
        const int chunk = UnixFsCid.ChunkSize;
        int[] sizes = [0, 1, 1000, chunk - 1, chunk, chunk + 1, 3 * chunk + 17, UnixFsCid.MaxLinks * chunk, UnixFsCid.MaxLinks * chunk + 1, (UnixFsCid.MaxLinks + 3) * chunk + 5];
        var folder = Directory.CreateTempSubdirectory("cid-vectors-");
        try
        {
            var random = new Random(13);
            var paths = new List<string>();
            var ours = new List<string>();
            foreach (var size in sizes)
            {
                var content = new byte[size];
                random.NextBytes(content);
                var path = Path.Combine(folder.FullName, $"{size}.bin");
                File.WriteAllBytes(path, content);
                paths.Add(path);
                ours.Add(UnixFsCid.Compute(content));
            }

            var script = File.ReadAllText(Path.Combine(RepositoryTools.Root, "tests", "Pipeline.Tests.Unit", "Marketplace", "unixfs-cid.mjs"));
            var theirs = RepositoryTools.Run("node", ["--input-type=module", "-e", script, .. paths], workingDirectory: RepositoryTools.ToolsFolder).Split('\n');

            Assert.Equal(theirs, ours);
            Assert.StartsWith("bafkrei", ours[1]); // one chunk: a raw leaf
            Assert.StartsWith("bafybei", ours[5]); // two chunks: a dag-pb node
        }
        finally
        {
            folder.Delete(recursive: true);
        }
    }
}
