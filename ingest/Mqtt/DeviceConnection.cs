using System.Net;
using System.Security.Cryptography.X509Certificates;
using MQTTnet.Adapter;
using MQTTnet.Formatter;
using MQTTnet.Packets;

namespace Pipeline.Ingest.Mqtt;

/// <summary>
/// One device's connection as MQTTnet sees it, with what the edge adds on the way: the client id as the CONNECT carried
/// it (the login signs that one), an id assigned to a client that sent none with a clean start — MQTTnet assigns one
/// only for MQTT 5, 3.1.1 allows it too [MQTT-3.1.3-6], and a plain mosquitto_pub sends none — and the maximum packet
/// size in the CONNACK, so MQTT 5 clients know the limit.
/// </summary>
internal sealed class DeviceConnection(IMqttChannelAdapter inner, int maxPacketBytes) : IMqttChannelAdapter
{
    /// <summary>The client id the CONNECT carried ("" for none); null until it arrived.</summary>
    public string? SentClientId { get; private set; }

    /// <summary>The server chose the client id.</summary>
    public bool AssignedClientId { get; private set; }

    public async Task<MqttPacket> ReceivePacketAsync(CancellationToken cancellationToken)
    {
        var packet = await inner.ReceivePacketAsync(cancellationToken).ConfigureAwait(false);
        if (packet is MqttConnectPacket connect && SentClientId is null)
        {
            SentClientId = connect.ClientId ?? "";
            if (SentClientId.Length == 0 && connect.CleanSession)
            {
                connect.ClientId = "auto-" + Guid.NewGuid().ToString("N");
                AssignedClientId = true;
            }
        }
        return packet;
    }

    public Task SendPacketAsync(MqttPacket packet, CancellationToken cancellationToken)
    {
        if (packet is MqttConnAckPacket connAck) connAck.MaximumPacketSize = (uint)maxPacketBytes;
        return inner.SendPacketAsync(packet, cancellationToken);
    }

    public long BytesReceived => inner.BytesReceived;
    public long BytesSent => inner.BytesSent;
    public X509Certificate2 ClientCertificate => inner.ClientCertificate;
    public EndPoint RemoteEndPoint => inner.RemoteEndPoint;
    public EndPoint LocalEndPoint => inner.LocalEndPoint;
    public bool IsSecureConnection => inner.IsSecureConnection;
    public MqttPacketFormatterAdapter PacketFormatterAdapter => inner.PacketFormatterAdapter;
    public Task ConnectAsync(CancellationToken cancellationToken) => inner.ConnectAsync(cancellationToken);
    public Task DisconnectAsync(CancellationToken cancellationToken) => inner.DisconnectAsync(cancellationToken);
    public void ResetStatistics() => inner.ResetStatistics();
    public void Dispose() => inner.Dispose();
}
