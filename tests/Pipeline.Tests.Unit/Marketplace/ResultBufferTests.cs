using Pipeline.Marketplace.Query;

namespace Pipeline.Tests.Unit.Marketplace;

/// <summary>Where a query's result waits for its charge (issue 13's query speed): memory while small, a temporary file past the limit, the same bytes either way.</summary>
public sealed class ResultBufferTests
{
    [Theory]
    [InlineData(10, false)]
    [InlineData(ResultBuffer.MemoryLimit, false)]
    [InlineData(ResultBuffer.MemoryLimit + 1, true)]
    [InlineData(3 * ResultBuffer.MemoryLimit + 17, true)]
    public async Task Read_AfterRewind_GivesBackExactlyWhatWasWritten_InMemoryOrSpilled(int size, bool spilled)
    {
        var written = Bytes(size);
        using var buffer = new ResultBuffer();
        // In uneven pieces, as a writer flushes them.
        for (var offset = 0; offset < size; offset += 7_919) buffer.Write(written.AsSpan(offset, Math.Min(7_919, size - offset)));
        buffer.Rewind();

        Assert.Equal(spilled, buffer.Spilled);
        Assert.Equal(size, buffer.Length);
        using var read = new MemoryStream();
        var chunk = new byte[4_096];
        while (await buffer.ReadAsync(chunk) is var n and > 0) read.Write(chunk, 0, n);
        Assert.Equal(written, read.ToArray());
    }

    [Theory]
    [InlineData(1_000)]
    [InlineData(2 * ResultBuffer.MemoryLimit)]
    public async Task CopyToAsync_AfterRewind_CopiesEverything(int size)
    {
        var written = Bytes(size);
        using var buffer = new ResultBuffer();
        buffer.Write(written);
        buffer.Rewind();
        using var copy = new MemoryStream();
        await buffer.CopyToAsync(copy);
        Assert.Equal(written, copy.ToArray());
    }

    [Fact]
    public void Dispose_OfASpilledResult_DeletesItsTemporaryFile()
    {
        var before = Directory.GetFiles(Path.GetTempPath()).ToHashSet();
        var buffer = new ResultBuffer();
        buffer.Write(Bytes(ResultBuffer.MemoryLimit + 1));
        var created = Directory.GetFiles(Path.GetTempPath()).Except(before).Where(f => new FileInfo(f).Length == ResultBuffer.MemoryLimit + 1).ToList();
        Assert.Single(created);
        buffer.Dispose();
        Assert.False(File.Exists(created[0]));
    }

    private static byte[] Bytes(int size)
    {
        var bytes = new byte[size];
        new Random(size).NextBytes(bytes);
        return bytes;
    }
}
