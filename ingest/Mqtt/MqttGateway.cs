using System.Net;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MQTTnet.Diagnostics.Logger;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using MQTTnet.Server;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Infra.Stack;
using Pipeline.Ingest.Gateway;

namespace Pipeline.Ingest.Mqtt;

/// <summary>
/// An MQTT broker endpoint for devices: a device publishes envelopes (one, or a JSON array) to
/// devices/{address}/readings. For QoS 1 the PUBACK goes out only after the Kafka acknowledgement. A refused reading
/// goes to the dead-letter topic with its reason (MQTT 5 clients also get a PUBACK reason code); when the broker
/// cannot take readings the client is disconnected with "server busy" and no PUBACK, so it sends again. A device over
/// its rate is told to come back later, never dead-lettered: MQTT 5 gets PUBACK "quota exceeded", 3.1.1 a disconnect.
/// </summary>
public sealed class MqttGateway(
    ReadingGateway gateway,
    ClientRateLimiter clients,
    EndpointsOptions endpoints,
    IOptions<IngestOptions> options,
    ILogger<MqttGateway> logger) : IHostedService
{
    public const string Transport = "mqtt";
    private const string ProtocolVersionKey = "protocol";
    private MqttServer? _server;

    /// <summary>The port bound: the configured one, or the one the system chose when configured as 0 (tests).</summary>
    public int Port { get; private set; }

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var serverOptions = new MqttServerOptionsBuilder()
            .WithDefaultEndpoint()
            .WithDefaultEndpointBoundIPAddress(IPAddress.Parse(endpoints.ListenAddress))
            .WithDefaultEndpointBoundIPV6Address(IPAddress.None)
            .WithDefaultEndpointPort(endpoints.MqttPort)
            .Build();
        _server = new MqttServerFactory(new MqttLogBridge(logger)).CreateMqttServer(serverOptions);
        _server.ValidatingConnectionAsync += ValidateConnectionAsync;
        _server.InterceptingPublishAsync += OnPublishAsync;
        try
        {
            await _server.StartAsync();
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException)
        {
            throw new InvalidOperationException($"MQTT cannot listen on {endpoints.MqttAddress}: {e.Message}. Stop the other program or move ours with --mqtt-port (PIPELINE_MQTT_PORT).", e);
        }
        Port = serverOptions.DefaultEndpointOptions.Port;
        logger.LogInformation("MQTT listening on {Address}:{Port}", endpoints.ListenAddress, Port);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_server is null) return;
        _server.AcceptNewConnections = false;
        await _server.StopAsync(new MqttServerStopOptions());
        _server.Dispose();
    }

    private Task ValidateConnectionAsync(ValidatingConnectionEventArgs e)
    {
        if (string.IsNullOrWhiteSpace(e.ClientId))
        {
            e.ReasonCode = MqttConnectReasonCode.ClientIdentifierNotValid;
            return Task.CompletedTask;
        }
        e.SessionItems[ProtocolVersionKey] = e.ProtocolVersion;
        return Task.CompletedTask;
    }

    private async Task OnPublishAsync(InterceptingPublishEventArgs e)
    {
        try
        {
            await HandlePublishAsync(e);
        }
        catch (Exception error) when (error is not OperationCanceledException)
        {
            // No PUBACK: the device sends again on a new connection; the reason is in the log.
            logger.LogError(error, "Handling a publish from {ClientId} failed", e.ClientId);
            e.CloseConnection = true;
        }
    }

    private async Task HandlePublishAsync(InterceptingPublishEventArgs e)
    {
        // The broker only ingests: nothing is routed to subscribers or retained.
        e.ProcessPublish = false;
        var message = e.ApplicationMessage;
        var payload = System.Buffers.BuffersExtensions.ToArray(message.Payload);
        var source = $"mqtt:{e.ClientId}:{message.Topic}";

        if (!TryParseTopic(message.Topic, out var device))
        {
            e.Response.ReasonCode = MqttPubAckReasonCode.TopicNameInvalid;
            e.Response.ReasonString = "Publish readings to devices/{0x address}/readings.";
            await gateway.DeadLetterAsync(payload, null, ReasonCode.BadAddress.ToWire(), $"Topic '{message.Topic}' is not devices/{{address}}/readings.", source, e.CancellationToken);
            return;
        }
        var client = "mqtt:" + e.ClientId;
        if (!clients.TryAcquire(client))
        {
            await DisconnectAsync(e, MqttDisconnectReasonCode.MessageRateTooHigh);
            return;
        }

        var batch = BatchParser.Parse(payload, BatchFormat.Json, options.Value.Limits);
        var items = batch.Error is { } error
            ? [new BatchItem(0, payload, null, error)]
            : batch.Items;
        var result = await gateway.SubmitAsync(items, new Sender(Transport, client, device), e.CancellationToken);

        if (result.Unavailable > 0)
        {
            // Some readings may be stored; the device resends them all and the processors drop the duplicates.
            await DisconnectAsync(e, MqttDisconnectReasonCode.ServerBusy);
            return;
        }
        if (result.RateLimited > 0)
        {
            // Throttled is not wrong: no success and no dead letter, so the device sends the publish again later.
            // MQTT 5 says so in the PUBACK; 3.1.1 has no negative PUBACK, so it gets none and resends on reconnecting.
            if (e.SessionItems[ProtocolVersionKey] is MqttProtocolVersion.V500)
            {
                var throttled = result.Receipts.First(r => r.Reason == ReasonCode.RateLimited.ToWire());
                e.Response.ReasonCode = MqttPubAckReasonCode.QuotaExceeded;
                e.Response.ReasonString = throttled.Reason + ": " + throttled.Detail;
            }
            else
            {
                await DisconnectAsync(e, MqttDisconnectReasonCode.QuotaExceeded);
            }
            return;
        }

        var refused = result.Receipts.Where(r => r.Status == Receipt.RefusedStatus).ToList();
        await Task.WhenAll(refused.Select(r =>
            gateway.DeadLetterAsync(items[r.Index].Raw, items[r.Index].Reading?.Content.Device.ToLowerHex(), r.Reason!, r.Detail!, source, e.CancellationToken)));
        if (result.Accepted + result.Duplicates == 0)
        {
            e.Response.ReasonCode = MqttPubAckReasonCode.PayloadFormatInvalid;
            e.Response.ReasonString = refused[0].Reason + ": " + refused[0].Detail;
        }
        else if (result.Accepted == 0)
        {
            // A success: the broker has every reading already. MQTT 5 clients can tell from the reason string.
            e.Response.ReasonString = Receipt.DuplicateStatus + ": " + result.Receipts.First(r => r.Status == Receipt.DuplicateStatus).Detail;
        }
    }

    private async Task DisconnectAsync(InterceptingPublishEventArgs e, MqttDisconnectReasonCode reason)
    {
        logger.LogWarning("Disconnecting MQTT client {ClientId}: {Reason}", e.ClientId, reason);
        e.CloseConnection = true;
        await _server!.DisconnectClientAsync(e.ClientId, reason);
    }

    /// <summary>devices/{address}/readings, the address in any case the EIP-55 rules accept.</summary>
    public static bool TryParseTopic(string topic, out EthAddress device)
    {
        device = default;
        var parts = topic.Split('/');
        return parts is ["devices", var address, "readings"] && EthAddress.TryParse(address.AsSpan(), out device);
    }

    /// <summary>MQTTnet's log lines into ILogger (its verbose level logs every packet, so it maps to Trace).</summary>
    private sealed class MqttLogBridge(ILogger logger) : IMqttNetLogger
    {
        public bool IsEnabled => true;

        public void Publish(MqttNetLogLevel level, string source, string message, object[] parameters, Exception exception)
        {
            var mapped = level switch
            {
                MqttNetLogLevel.Error => LogLevel.Error,
                MqttNetLogLevel.Warning => LogLevel.Warning,
                MqttNetLogLevel.Info => LogLevel.Debug,
                _ => LogLevel.Trace,
            };
            if (!logger.IsEnabled(mapped)) return;
            var text = parameters is { Length: > 0 } ? string.Format(System.Globalization.CultureInfo.InvariantCulture, message, parameters) : message;
            logger.Log(mapped, exception, "MQTT {Source}: {Message}", source, text);
        }
    }
}
