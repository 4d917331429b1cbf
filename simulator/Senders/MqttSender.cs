using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using Pipeline.Core.Crypto;

namespace Pipeline.Simulator.Senders;

/// <summary>
/// Publishes readings over MQTT 5 with QoS 1, each device on a connection of its own logged in with its key (the edge
/// lets a device publish only to its own topic), one lane's devices one after another so each device's readings stay in
/// order. A PUBACK reason code says refused; a dropped connection (the edge shedding load) means log in again and send
/// again.
/// </summary>
public sealed class MqttSender(string host, int port, SimulationStats stats, TimeProvider clock) : IReadingSender
{
    private readonly Dictionary<string, IMqttClient> _clients = [];

    public async Task SendAsync(IReadOnlyList<Outgoing> batch, CancellationToken cancellation)
    {
        stats.AddSent(batch.Count);
        foreach (var item in batch)
        {
            while (!cancellation.IsCancellationRequested)
            {
                try
                {
                    var client = await ConnectedAsync(item.Device, cancellation);
                    var message = new MqttApplicationMessageBuilder()
                        .WithTopic($"devices/{item.Device.Address}/readings")
                        .WithPayload(item.Envelope)
                        .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
                        .Build();
                    var result = await client.PublishAsync(message, cancellation);
                    if (result.ReasonCode == MqttClientPublishReasonCode.Success)
                    {
                        // The edge says "duplicate: …" in the reason string when the broker already had the reading.
                        item.Entry.Edge = result.ReasonString?.StartsWith("duplicate", StringComparison.Ordinal) == true ? "duplicate" : "accepted";
                        stats.AddAcknowledged(1);
                    }
                    else if (result.ReasonCode == MqttClientPublishReasonCode.QuotaExceeded)
                    {
                        // Over the device's rate: nothing was kept, so wait as a device would and publish it again.
                        stats.AddRetried(1);
                        await Task.Delay(TimeSpan.FromSeconds(1), cancellation);
                        continue;
                    }
                    else
                    {
                        // The edge writes "reason: detail" into the PUBACK's reason string.
                        var reason = result.ReasonString?.Split(':')[0] ?? result.ReasonCode.ToString();
                        item.Entry.Edge = "refused:" + reason;
                        stats.Refuse(reason);
                    }
                    break;
                }
                catch (Exception e) when (!cancellation.IsCancellationRequested)
                {
                    // Whatever broke the connection (the edge shedding load, a reset), a fresh one sends the reading again.
                    stats.AddRetried(1);
                    stats.Fail(e, retried: true);
                    Drop(item.Device.Address);
                    await Task.Delay(TimeSpan.FromSeconds(1), cancellation);
                }
            }
        }
    }

    /// <summary>The device's connection, logged in afresh (a login is good for one connection) when it is not connected.</summary>
    private async Task<IMqttClient> ConnectedAsync(SimulatedDevice device, CancellationToken cancellation)
    {
        if (_clients.TryGetValue(device.Address, out var client) && client.IsConnected) return client;
        Drop(device.Address);
        client = new MqttClientFactory().CreateMqttClient();
        _clients[device.Address] = client;
        // The client id is the device's address: unique, and the device's own.
        var options = new MqttClientOptionsBuilder()
            .WithTcpServer(host, port)
            .WithClientId(device.Address)
            .WithCredentials(device.Address, DeviceLogin.Password(device.Key, device.Address, clock.GetUtcNow()))
            .WithProtocolVersion(MqttProtocolVersion.V500)
            .WithTimeout(TimeSpan.FromSeconds(10))
            .Build();
        var connected = await client.ConnectAsync(options, cancellation);
        if (connected.ResultCode != MqttClientConnectResultCode.Success)
            throw new InvalidOperationException($"The MQTT endpoint refused {device.Address}'s login: {connected.ResultCode} {connected.ReasonString}");
        return client;
    }

    private void Drop(string device)
    {
        if (!_clients.Remove(device, out var client)) return;
        client.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var client in _clients.Values)
        {
            try
            {
                if (client.IsConnected) await client.DisconnectAsync();
            }
            catch (MQTTnet.Exceptions.MqttCommunicationException)
            {
                // The server went first (depin up stops its MQTT listener with the host): there is nothing left to close.
            }
            client.Dispose();
        }
        _clients.Clear();
    }
}
