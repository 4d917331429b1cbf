using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace Pipeline.Cli.Simulator.Senders;

/// <summary>
/// Publishes readings over MQTT 5 with QoS 1, one connection per lane so each device's readings stay in order. A
/// PUBACK reason code says refused; a dropped connection (the edge shedding load) means reconnect and send again.
/// </summary>
public sealed class MqttSender(string host, int port, string clientId, SimulationStats stats) : IReadingSender
{
    private IMqttClient _client = new MqttClientFactory().CreateMqttClient();

    public async Task SendAsync(IReadOnlyList<Outgoing> batch, CancellationToken cancellation)
    {
        stats.AddSent(batch.Count);
        foreach (var item in batch)
        {
            while (!cancellation.IsCancellationRequested)
            {
                try
                {
                    await EnsureConnectedAsync(cancellation);
                    var message = new MqttApplicationMessageBuilder()
                        .WithTopic($"devices/{item.Device.Address}/readings")
                        .WithPayload(item.Envelope)
                        .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
                        .Build();
                    var result = await _client.PublishAsync(message, cancellation);
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
                    _client.Dispose();
                    _client = new MqttClientFactory().CreateMqttClient();
                    await Task.Delay(TimeSpan.FromSeconds(1), cancellation);
                }
            }
        }
    }

    private async Task EnsureConnectedAsync(CancellationToken cancellation)
    {
        if (_client.IsConnected) return;
        var options = new MqttClientOptionsBuilder()
            .WithTcpServer(host, port)
            .WithClientId(clientId)
            .WithProtocolVersion(MqttProtocolVersion.V500)
            .WithTimeout(TimeSpan.FromSeconds(10))
            .Build();
        await _client.ConnectAsync(options, cancellation);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (_client.IsConnected) await _client.DisconnectAsync();
        }
        catch (MQTTnet.Exceptions.MqttCommunicationException)
        {
            // The server went first (depin up stops its MQTT listener with the host): there is nothing left to close.
        }
        _client.Dispose();
    }
}
