namespace PumpFleet.Gateway.Mqtt;

/// <summary>Why <see cref="MqttFrameGuardStream"/> stopped a connection.</summary>
internal enum FrameViolation
{
    /// <summary>The fixed header announced a packet larger than the limit.</summary>
    TooLarge,

    /// <summary>The remaining-length field ran over four bytes (MQTT 5 §1.5.5): a malformed packet.</summary>
    MalformedLength,
}

/// <summary>
/// Sits between the socket (or the TLS stream) and MQTTnet's channel adapter and follows the MQTT framing of what
/// the client sends: the type byte, the variable-length "remaining length", then that many body bytes. MQTTnet
/// allocates the whole body as soon as it has decoded the length, and its server has no packet-size option, so the
/// limit is enforced here: when a length byte completes a length over the limit, that read reports end of stream
/// instead of handing the byte on, MQTTnet sees a closed connection and never allocates the body. The limit is asked
/// for each packet, so it can be tighter before the client has authenticated.
/// </summary>
internal sealed class MqttFrameGuardStream(
    Stream inner,
    Func<int> maxPacketSize,
    Action<FrameViolation, long> onViolation,
    Func<FrameViolation, CancellationToken, Task>? farewell = null) : Stream
{
    /// <summary>After the farewell, how long the rest of the refused packet is read and discarded before the close.</summary>
    internal static readonly TimeSpan DrainTime = TimeSpan.FromSeconds(2);

    private enum Part
    {
        TypeByte,
        Length,
        Body,
    }

    private Part _part = Part.TypeByte;
    private int _lengthBytes;
    private long _length;
    private long _bodyLeft;
    private bool _stopped;
    private FrameViolation _violation;
    private volatile bool _writesClosed;

    /// <inheritdoc />
    public override bool CanRead => inner.CanRead;

    /// <inheritdoc />
    public override bool CanSeek => false;

    /// <inheritdoc />
    public override bool CanWrite => inner.CanWrite;

    /// <inheritdoc />
    public override long Length => throw new NotSupportedException();

    /// <inheritdoc />
    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    /// <inheritdoc />
    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_stopped)
        {
            return 0;
        }

        var n = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        if (Inspect(buffer.Span[..n]))
        {
            return n;
        }

        if (farewell is not null)
        {
            // The offending bytes are never handed on; the farewell (an MQTT 5 DISCONNECT) is written through
            // MQTTnet's own send path, then the rest of the packet is read into a small scratch buffer and dropped
            // for a moment, so that closing with unread data (a TCP reset) does not destroy the DISCONNECT in flight.
            await farewell(_violation, cancellationToken).ConfigureAwait(false);
            await DrainAsync(cancellationToken).ConfigureAwait(false);
        }

        return 0;
    }

    /// <summary>No more writes reach the socket (after a DISCONNECT nothing else may be sent); they fail instead.</summary>
    internal void CloseWrites() => _writesClosed = true;

    private async Task DrainAsync(CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(DrainTime);
        var scratch = new byte[4096];
        try
        {
            while (await inner.ReadAsync(scratch, deadline.Token).ConfigureAwait(false) > 0)
            {
            }
        }
        catch (Exception e) when (e is OperationCanceledException or IOException or ObjectDisposedException)
        {
            // Time is up or the peer is gone: close now.
        }
    }

    /// <inheritdoc />
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <inheritdoc />
    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    /// <inheritdoc />
    public override int Read(Span<byte> buffer)
    {
        if (_stopped)
        {
            return 0;
        }

        var n = inner.Read(buffer);
        return Inspect(buffer[..n]) ? n : 0;
    }

    /// <summary>Follows the framing over <paramref name="bytes"/>; false when the connection must stop here.</summary>
    internal bool Inspect(ReadOnlySpan<byte> bytes)
    {
        var i = 0;
        while (i < bytes.Length)
        {
            switch (_part)
            {
                case Part.TypeByte:
                    _part = Part.Length;
                    _lengthBytes = 0;
                    _length = 0;
                    i++;
                    break;
                case Part.Length:
                    var b = bytes[i++];
                    _length |= (long)(b & 0x7F) << (7 * _lengthBytes);
                    _lengthBytes++;
                    if ((b & 0x80) != 0)
                    {
                        if (_lengthBytes == 4)
                        {
                            return Stop(FrameViolation.MalformedLength, -1);
                        }

                        break;
                    }

                    // MQTT 5's Maximum Packet Size counts the whole packet: type byte, length field and body.
                    var total = 1 + _lengthBytes + _length;
                    if (total > maxPacketSize())
                    {
                        return Stop(FrameViolation.TooLarge, total);
                    }

                    _bodyLeft = _length;
                    _part = _bodyLeft == 0 ? Part.TypeByte : Part.Body;
                    break;
                default:
                    var take = (int)Math.Min(_bodyLeft, bytes.Length - i);
                    i += take;
                    _bodyLeft -= take;
                    if (_bodyLeft == 0)
                    {
                        _part = Part.TypeByte;
                    }

                    break;
            }
        }

        return true;
    }

    private bool Stop(FrameViolation violation, long announced)
    {
        _stopped = true;
        _violation = violation;
        onViolation(violation, announced);
        return false;
    }

    /// <inheritdoc />
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        _writesClosed ? ValueTask.FromException(WritesClosed()) : inner.WriteAsync(buffer, cancellationToken);

    /// <inheritdoc />
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        _writesClosed ? Task.FromException(WritesClosed()) : inner.WriteAsync(buffer, offset, count, cancellationToken);

    /// <inheritdoc />
    public override void Write(byte[] buffer, int offset, int count)
    {
        if (_writesClosed)
        {
            throw WritesClosed();
        }

        inner.Write(buffer, offset, count);
    }

    private static IOException WritesClosed() => new("The connection was closed with a DISCONNECT; nothing more is sent.");

    /// <inheritdoc />
    public override void Flush() => inner.Flush();

    /// <inheritdoc />
    public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);

    /// <inheritdoc />
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    /// <inheritdoc />
    public override void SetLength(long value) => throw new NotSupportedException();

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }

        base.Dispose(disposing);
    }

    /// <inheritdoc />
    public override async ValueTask DisposeAsync()
    {
        await inner.DisposeAsync().ConfigureAwait(false);
        await base.DisposeAsync().ConfigureAwait(false);
    }
}
