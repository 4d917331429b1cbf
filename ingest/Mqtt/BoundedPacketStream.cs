namespace Pipeline.Ingest.Mqtt;

/// <summary>
/// A device connection's bytes with MQTT's framing followed as they are read. MQTTnet allocates a packet's whole
/// declared length (up to 256 MB) as soon as it has the fixed header, and has no limit of its own: so a packet declared
/// larger than the limit ends the stream here, before MQTTnet reads the length byte that would complete it. The first
/// packet (the CONNECT, before anyone is authenticated) has a smaller limit.
/// </summary>
internal sealed class BoundedPacketStream(Stream inner, int firstPacketLimit, int packetLimit, Action<long, int> refused) : Stream
{
    private enum Part { FixedHeader, Length, Body }

    private Part _part = Part.FixedHeader;
    private long _declared;
    private int _lengthBytes;
    private long _bodyLeft;
    private bool _first = true;
    private bool _closed;

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_closed) return 0;
        var read = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        return Follow(buffer.Span[..read]) ? read : 0;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count)
    {
        if (_closed) return 0;
        var read = inner.Read(buffer, offset, count);
        return Follow(buffer.AsSpan(offset, read)) ? read : 0;
    }

    /// <summary>Walks the bytes about to be handed over; false (the stream ends, so the connection closes) at a packet over its limit.</summary>
    private bool Follow(ReadOnlySpan<byte> bytes)
    {
        var i = 0;
        while (i < bytes.Length)
        {
            switch (_part)
            {
                case Part.FixedHeader:
                    i++;
                    (_part, _declared, _lengthBytes) = (Part.Length, 0, 0);
                    break;
                case Part.Length:
                    var b = bytes[i++];
                    _declared |= (long)(b & 0x7F) << (7 * _lengthBytes++);
                    var limit = _first ? firstPacketLimit : packetLimit;
                    // A longer length only grows: refuse as soon as what is known already exceeds the limit.
                    if (_declared > limit || ((b & 0x80) != 0 && _lengthBytes == 4)) return Refuse(limit);
                    if ((b & 0x80) != 0) break;
                    _first = false;
                    _bodyLeft = _declared;
                    _part = _bodyLeft == 0 ? Part.FixedHeader : Part.Body;
                    break;
                case Part.Body:
                    var skip = (int)Math.Min(_bodyLeft, bytes.Length - i);
                    i += skip;
                    _bodyLeft -= skip;
                    if (_bodyLeft == 0) _part = Part.FixedHeader;
                    break;
            }
        }
        return true;
    }

    private bool Refuse(int limit)
    {
        _closed = true;
        refused(_declared, limit);
        return false;
    }

    public override void Write(byte[] buffer, int offset, int count) => inner.Write(buffer, offset, count);
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => inner.WriteAsync(buffer, cancellationToken);
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => inner.WriteAsync(buffer, offset, count, cancellationToken);
    public override void Flush() => inner.Flush();
    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    public override bool CanRead => true;
    public override bool CanWrite => true;
    public override bool CanSeek => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) inner.Dispose();
        base.Dispose(disposing);
    }
}
