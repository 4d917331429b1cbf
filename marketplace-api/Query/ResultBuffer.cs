using System.Buffers;

namespace Pipeline.Marketplace.Query;

/// <summary>
/// Holds a query's result between writing it and sending it (it may go out only once it is charged): in a pooled
/// buffer while it is small, which is most results, and in a temporary file (deleted on dispose) once it passes
/// <see cref="MemoryLimit"/> bytes. Written once from the start, then <see cref="Rewind"/> and read once.
/// </summary>
public sealed class ResultBuffer : Stream
{
    /// <summary>Results up to this size stay in memory; a larger one moves to a temporary file as it grows past it.</summary>
    public const int MemoryLimit = 1024 * 1024;

    private const int FirstSize = 64 * 1024;

    private byte[]? _memory = ArrayPool<byte>.Shared.Rent(FirstSize);
    private int _length;
    private int _read;
    private FileStream? _file;

    /// <summary>Whether the result outgrew memory and is held in a temporary file.</summary>
    public bool Spilled => _file is not null;

    public override bool CanRead => true;
    public override bool CanSeek => true;
    public override bool CanWrite => true;
    public override long Length => _file?.Length ?? _length;

    public override long Position
    {
        get => _file?.Position ?? _read;
        set
        {
            if (value != 0) throw new NotSupportedException("A result buffer is only rewound to its start.");
            Rewind();
        }
    }

    /// <summary>Makes what was written readable from its start.</summary>
    public void Rewind()
    {
        if (_file is not null) _file.Position = 0;
        else _read = 0;
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (_file is null && (long)_length + buffer.Length > MemoryLimit) Spill();
        if (_file is not null)
        {
            _file.Write(buffer);
            return;
        }
        var memory = Memory();
        if (_length + buffer.Length > memory.Length)
        {
            var larger = ArrayPool<byte>.Shared.Rent(Math.Min(MemoryLimit, Math.Max(memory.Length * 2, _length + buffer.Length)));
            memory.AsSpan(0, _length).CopyTo(larger);
            ArrayPool<byte>.Shared.Return(memory);
            _memory = memory = larger;
        }
        buffer.CopyTo(memory.AsSpan(_length));
        _length += buffer.Length;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken)
    {
        Write(buffer.AsSpan(offset, count));
        return Task.CompletedTask;
    }

    private void Spill()
    {
        var memory = Memory();
        _file = new FileStream(Path.Combine(Path.GetTempPath(), Path.GetRandomFileName()), FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 81920, FileOptions.DeleteOnClose);
        _file.Write(memory, 0, _length);
        ArrayPool<byte>.Shared.Return(memory);
        _memory = null;
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (_file is not null) return _file.Read(buffer);
        var count = Math.Min(buffer.Length, _length - _read);
        Memory().AsSpan(_read, count).CopyTo(buffer);
        _read += count;
        return count;
    }

    // In memory nothing waits; a spilled result reads its file synchronously too (it was just written and sits in the page cache).
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => ValueTask.FromResult(Read(buffer.Span));

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => Task.FromResult(Read(buffer.AsSpan(offset, count)));

    public override async Task CopyToAsync(Stream destination, int bufferSize, CancellationToken cancellationToken)
    {
        if (_file is not null)
        {
            await _file.CopyToAsync(destination, bufferSize, cancellationToken);
            return;
        }
        var start = _read;
        _read = _length;
        await destination.WriteAsync(Memory().AsMemory(start, _length - start), cancellationToken);
    }

    public override void Flush() => _file?.Flush();

    public override long Seek(long offset, SeekOrigin origin)
    {
        if (offset != 0 || origin != SeekOrigin.Begin) throw new NotSupportedException("A result buffer is only rewound to its start.");
        Rewind();
        return 0;
    }

    public override void SetLength(long value) => throw new NotSupportedException();

    private byte[] Memory() => _memory ?? throw new ObjectDisposedException(nameof(ResultBuffer));

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            if (_memory is { } memory) ArrayPool<byte>.Shared.Return(memory);
            _memory = null;
            _file?.Dispose();
            _file = null;
        }
        base.Dispose(disposing);
    }
}
