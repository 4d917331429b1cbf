using System.Collections.Concurrent;
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
using Pipeline.Infra.Hosting;
using Pipeline.Ingest.Gateway;

namespace Pipeline.Ingest.Mqtt;

/// <summary>
/// An MQTT broker endpoint for devices. A device logs in with its address and a signed login (<see cref="DeviceLogin"/>)
/// and publishes envelopes (one, or a JSON array) to its own topic, devices/{address}/readings. For QoS 1 the PUBACK goes
/// out only after the Kafka acknowledgement. A refused reading goes to the dead-letter topic with its reason (MQTT 5
/// clients also get a PUBACK reason code); when the broker cannot take readings the client is disconnected with
/// "server busy" and no PUBACK, so it sends again. A device over its rate, or publishing where it may not, is told so
/// and never dead-lettered: MQTT 5 gets a PUBACK reason code, 3.1.1 a disconnect.
/// </summary>
public sealed class MqttGateway(
    ReadingGateway gateway,
    ClientRateLimiter clients,
    IngestMetrics metrics,
    EndpointsOptions endpoints,
    IOptions<IngestOptions> options,
    TimeProvider clock,
    ILogger<MqttGateway> logger) : IHostedService
{
    public const string Transport = "mqtt";
    private const string ProtocolVersionKey = "protocol";
    private const string DeviceKey = "device";
    private const int MaxClientIdLength = 256;

    private readonly MqttLimits _limits = options.Value.Mqtt;
    private readonly UsedLogins _logins = new(options.Value.Mqtt.RememberedLogins, options.Value.Mqtt.LoginWindow);
    /// <summary>Which device holds each client id in use, so no device can take over another's session by its id.</summary>
    private readonly ConcurrentDictionary<string, EthAddress> _clientIds = new(StringComparer.Ordinal);
    private MqttServer? _server;
    private MqttListener? _listener;

    /// <summary>The port bound: the configured one, or the one the system chose when configured as 0 (tests).</summary>
    public int Port => _listener?.Port ?? 0;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var serverOptions = new MqttServerOptionsBuilder()
            // A connection that sends no CONNECT within this is closed; MQTTnet's default is 100 s.
            .WithDefaultCommunicationTimeout(TimeSpan.FromSeconds(10))
            .Build();
        var endpoint = new IPEndPoint(IPAddress.Parse(endpoints.ListenAddress), endpoints.MqttPort);
        _listener = new MqttListener(endpoint, _limits, clients, metrics, logger);
        _server = new MqttServerFactory(new MqttLogBridge(logger)).CreateMqttServer(serverOptions, [_listener]);
        _server.ValidatingConnectionAsync += ValidateConnectionAsync;
        _server.SessionDeletedAsync += ReleaseClientIdAsync;
        _server.InterceptingPublishAsync += OnPublishAsync;
        _server.InterceptingSubscriptionAsync += RefuseSubscriptionAsync;
        try
        {
            await _server.StartAsync();
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException)
        {
            throw new InvalidOperationException($"MQTT cannot listen on {endpoints.MqttAddress}: {e.Message}. Stop the other program or move ours with --mqtt-port (PIPELINE_MQTT_PORT).", e);
        }
        logger.LogInformation("MQTT listening on {Address}:{Port}", endpoints.ListenAddress, Port);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_server is null) return;
        _server.AcceptNewConnections = false;
        await _server.StopAsync(new MqttServerStopOptions());
        _server.Dispose();
    }

    /// <summary>
    /// Who connects: the username is a device address and the password that device's signed login, fresh and used once.
    /// The client id may be empty with a clean start (one is assigned) and is the device's for as long as its session lasts.
    /// </summary>
    private Task ValidateConnectionAsync(ValidatingConnectionEventArgs e)
    {
        var connection = (DeviceConnection)e.ChannelAdapter;
        var sentClientId = connection.SentClientId ?? e.ClientId ?? "";
        if (string.IsNullOrEmpty(e.ClientId))
            return Refuse(MqttConnectReasonCode.ClientIdentifierNotValid, "empty_client_id", "An empty client id needs a clean start (the server then assigns one).");
        if (sentClientId.Length > MaxClientIdLength)
            return Refuse(MqttConnectReasonCode.ClientIdentifierNotValid, "client_id_too_long", $"A client id may have at most {MaxClientIdLength} characters.");

        var now = clock.GetUtcNow();
        if (!DeviceLogin.TryVerify(e.UserName, e.Password, sentClientId, now, _limits.LoginWindow, out var login, out var refusal))
            return Refuse(MqttConnectReasonCode.BadUserNameOrPassword, "bad_login", refusal);
        switch (_logins.TryUse(login, sentClientId, now))
        {
            case UsedLogins.Outcome.Reused:
                return Refuse(MqttConnectReasonCode.BadUserNameOrPassword, "login_reused", "This login was used already; sign a new one with the current time for every connection.");
            case UsedLogins.Outcome.Full:
                return Refuse(MqttConnectReasonCode.ServerBusy, "logins_full", "Too many logins at once; retry shortly.");
        }
        if (_clientIds.GetOrAdd(e.ClientId, login.Device) != login.Device)
            return Refuse(MqttConnectReasonCode.ClientIdentifierNotValid, "client_id_taken", "Another device is connected with this client id; choose another.");

        e.SessionItems[DeviceKey] = login.Device;
        e.SessionItems[ProtocolVersionKey] = e.ProtocolVersion;
        if (connection.AssignedClientId && e.ProtocolVersion == MqttProtocolVersion.V500) e.AssignedClientIdentifier = e.ClientId;
        return Task.CompletedTask;

        Task Refuse(MqttConnectReasonCode code, string why, string detail)
        {
            e.ReasonCode = code;
            e.ReasonString = detail;
            metrics.MqttConnectionRefused(why);
            logger.LogInformation("MQTT login refused for {Username} from {Remote} ({Reason}): {Detail}", e.UserName, e.RemoteEndPoint, why, detail);
            return Task.CompletedTask;
        }
    }

    private Task ReleaseClientIdAsync(SessionDeletedEventArgs e)
    {
        if (e.SessionItems[DeviceKey] is EthAddress device) _clientIds.TryRemove(new KeyValuePair<string, EthAddress>(e.Id, device));
        return Task.CompletedTask;
    }

    /// <summary>The endpoint only ingests: nothing is routed to subscribers, so nothing can be subscribed to.</summary>
    private static Task RefuseSubscriptionAsync(InterceptingSubscriptionEventArgs e)
    {
        e.ProcessSubscription = false;
        e.Response.ReasonCode = MqttSubscribeReasonCode.NotAuthorized;
        e.Response.ReasonString = "This endpoint only takes readings; nothing can be subscribed to.";
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
        var device = (EthAddress)e.SessionItems[DeviceKey]!;
        var message = e.ApplicationMessage;

        // Where it may not publish, a device is told so and nothing is produced, not even a dead letter: the cheapest
        // check first, then its rate, and only then any work on the payload.
        var wellFormed = TryParseTopic(message.Topic, out var topicDevice);
        if (!wellFormed || topicDevice != device)
        {
            metrics.Refused(Transport, wellFormed ? ReasonCode.SignerMismatch.ToWire() : ReasonCode.BadAddress.ToWire());
            if (IsMqtt5(e))
            {
                e.Response.ReasonCode = wellFormed ? MqttPubAckReasonCode.NotAuthorized : MqttPubAckReasonCode.TopicNameInvalid;
                e.Response.ReasonString = $"Device {device.ToLowerHex()} publishes readings to devices/{device.ToLowerHex()}/readings only.";
            }
            else
            {
                await DisconnectAsync(e, MqttDisconnectReasonCode.NotAuthorized);
            }
            return;
        }
        if (!clients.TryAcquire("mqtt:" + device.ToLowerHex()))
        {
            await DisconnectAsync(e, MqttDisconnectReasonCode.MessageRateTooHigh);
            return;
        }

        var payload = System.Buffers.BuffersExtensions.ToArray(message.Payload);
        var source = $"mqtt:{e.ClientId}:{message.Topic}";
        var batch = BatchParser.Parse(payload, BatchFormat.Json, options.Value.Limits);
        var items = batch.Error is { } error
            ? [new BatchItem(0, payload, null, error)]
            : batch.Items;
        var result = await gateway.SubmitAsync(items, new Sender(Transport, "mqtt:" + device.ToLowerHex(), device), e.CancellationToken);

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
            if (IsMqtt5(e))
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

    private static bool IsMqtt5(InterceptingPublishEventArgs e) => e.SessionItems[ProtocolVersionKey] is MqttProtocolVersion.V500;

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
