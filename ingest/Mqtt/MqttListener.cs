using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using MQTTnet.Adapter;
using MQTTnet.Diagnostics.Logger;
using MQTTnet.Formatter;
using MQTTnet.Implementations;
using MQTTnet.Server;
using Pipeline.Ingest.Gateway;

namespace Pipeline.Ingest.Mqtt;

/// <summary>
/// The TCP side of the MQTT endpoint, in place of MQTTnet's own: before MQTTnet sees a byte, a connection is charged to
/// its address's rate (the same bucket as its HTTP requests), counted against its address's open connections, and its
/// stream bounded per packet (<see cref="BoundedPacketStream"/>).
/// </summary>
internal sealed class MqttListener(IPEndPoint endpoint, MqttLimits limits, ClientRateLimiter clients, IngestMetrics metrics, ILogger logger) : IMqttServerAdapter
{
    private readonly ConcurrentDictionary<IPAddress, int> _open = new();
    private readonly CancellationTokenSource _stopping = new();
    private TcpListener? _listener;

    public Func<IMqttChannelAdapter, Task>? ClientHandler { get; set; }

    /// <summary>The port bound: the configured one, or the one the system chose for 0.</summary>
    public int Port { get; private set; }

    public Task StartAsync(MqttServerOptions options, IMqttNetLogger mqttLogger)
    {
        _listener = new TcpListener(endpoint);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _ = Task.Run(() => AcceptAsync(options, mqttLogger));
        return Task.CompletedTask;
    }

    public Task StopAsync()
    {
        _stopping.Cancel();
        _listener?.Stop();
        return Task.CompletedTask;
    }

    public void Dispose()
    {
        _stopping.Cancel();
        _listener?.Dispose();
        _stopping.Dispose();
    }

    private async Task AcceptAsync(MqttServerOptions options, IMqttNetLogger mqttLogger)
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener!.AcceptSocketAsync(_stopping.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e)
            {
                logger.LogWarning("Accepting an MQTT connection failed: {Message}", e.Message);
                continue;
            }
            _ = Task.Run(() => ServeAsync(socket, options, mqttLogger));
        }
    }

    private async Task ServeAsync(Socket socket, MqttServerOptions options, IMqttNetLogger mqttLogger)
    {
        using (socket)
        {
            var remote = (IPEndPoint)socket.RemoteEndPoint!;
            if (!clients.TryAcquire(remote.Address.ToString()))
            {
                metrics.MqttConnectionRefused("rate_limited");
                return;
            }
            if (_open.AddOrUpdate(remote.Address, 1, (_, n) => n + 1) > limits.ConnectionsPerAddress)
            {
                metrics.MqttConnectionRefused("too_many_connections");
                Close(remote.Address);
                return;
            }
            try
            {
                socket.NoDelay = true;
                var stream = new BoundedPacketStream(new NetworkStream(socket, ownsSocket: false), limits.MaxConnectBytes, limits.MaxPacketBytes, (declared, limit) =>
                {
                    metrics.MqttConnectionRefused("too_large");
                    logger.LogWarning("MQTT client {Remote} declared a packet of {Declared} bytes, over the limit of {Limit}; connection closed", remote, declared, limit);
                });
                var channel = new MqttTcpChannel(stream, socket.LocalEndPoint, remote, null);
                var formatter = new MqttPacketFormatterAdapter(new MqttBufferWriter(options.WriterBufferSize, options.WriterBufferSizeMax));
                using var adapter = new MqttChannelAdapter(channel, formatter, mqttLogger);
                if (ClientHandler is { } handle) await handle(new DeviceConnection(adapter, limits.MaxPacketBytes)).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException)
            {
                logger.LogDebug("MQTT connection from {Remote} ended: {Message}", remote, e.Message);
            }
            finally
            {
                Close(remote.Address);
            }
        }
    }

    private void Close(IPAddress address)
    {
        // Decrement, and forget addresses with nothing open so the map does not grow with every address ever seen.
        if (_open.AddOrUpdate(address, 0, (_, n) => n - 1) <= 0) _open.TryRemove(new KeyValuePair<IPAddress, int>(address, 0));
    }
}
