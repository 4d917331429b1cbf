using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Core.Registry;

namespace Pipeline.Tests.Support.Fuzz;

/// <summary>What the running endpoints answered to hostile bodies: each answer counted, and every answer that breaks a promise kept with the body that caused it.</summary>
public sealed class EndpointCounts
{
    public long Requests { get; set; }
    public SortedDictionary<string, long> Answers { get; } = new(StringComparer.Ordinal);
    public List<string> Failures { get; } = [];

    public void Count(string answer)
    {
        lock (Answers) Answers[answer] = Answers.GetValueOrDefault(answer) + 1;
    }

    public void Fail(string what, byte[] body)
    {
        lock (Failures) Failures.Add($"{what}; body (base64): {Convert.ToBase64String(body)}");
    }
}

/// <summary>
/// Hostile bodies through a running stack: HTTP ingest (every content type and encoding, gzip whole or broken), the
/// registry's writes, and MQTT publishes over an authenticated MQTT 5 session. The promises: no 5xx, every refusal an
/// RFC 9457 problem with a reason, no connection dropped by a crash, and an honest device served afterwards
/// (<see cref="CheckHonestDeviceAsync"/>).
/// </summary>
public static class EndpointFuzz
{
    private static readonly string[] ContentTypes =
        ["application/json", "application/json; charset=utf-8", "text/plain", "application/json; charset=latin1", "application/x-ndjson; charset=UTF-8", "*/*", "application/"];

    public static async Task<EndpointCounts> HttpAsync(Uri ingest, Uri api, ulong seed, int count, int concurrency = 4)
    {
        var counts = new EndpointCounts();
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
        var readings = FuzzBodies.Samples(FuzzBodies.ReadingsBody, seed).GetEnumerator();
        var registry = FuzzBodies.Samples(FuzzBodies.RegistryBody, seed).GetEnumerator();
        var next = -1;
        var gate = new object();
        await Task.WhenAll(Enumerable.Range(0, concurrency).Select(async _ =>
        {
            for (var i = Interlocked.Increment(ref next); i < count; i = Interlocked.Increment(ref next))
            {
                HttpRequestMessage request;
                byte[] body;
                lock (gate)
                {
                    if (i % 3 == 2)
                    {
                        registry.MoveNext();
                        body = registry.Current;
                        request = RegistryRequest(api, i, body);
                    }
                    else
                    {
                        readings.MoveNext();
                        (body, var ndjson) = readings.Current;
                        request = ReadingsRequest(ingest, i, body, ndjson);
                    }
                }
                await SendAsync(client, request, body, counts);
            }
        }));
        return counts;
    }

    private static HttpRequestMessage ReadingsRequest(Uri ingest, int i, byte[] body, bool ndjson)
    {
        var content = (i % 20) switch
        {
            0 => Gzip(body, whole: true),
            1 => Gzip(body, whole: false),
            _ => new ByteArrayContent(body),
        };
        if (i % 20 is 0 or 1) content.Headers.ContentEncoding.Add("gzip");
        if (i % 50 == 3) content.Headers.ContentEncoding.Add("br");
        var type = i % 10 == 5 ? ContentTypes[i / 10 % ContentTypes.Length] : ndjson ? "application/x-ndjson" : "application/json";
        content.Headers.TryAddWithoutValidation("Content-Type", type);
        return new HttpRequestMessage(HttpMethod.Post, new Uri(ingest, "/v1/readings")) { Content = content };
    }

    private static HttpRequestMessage RegistryRequest(Uri api, int i, byte[] body)
    {
        // Transfers carry the device in the path as well: a real address, or whatever the body's first bytes make of it.
        var path = (i % 4) switch
        {
            0 => "/v1/devices/0x" + new string('a', 40) + "/transfers",
            1 => "/v1/devices/" + Uri.EscapeDataString(Encoding.UTF8.GetString(body.AsSpan(0, Math.Min(body.Length, 48)))) + "/transfers",
            _ => "/v1/devices",
        };
        var content = new ByteArrayContent(body);
        content.Headers.TryAddWithoutValidation("Content-Type", i % 10 == 5 ? ContentTypes[i / 10 % ContentTypes.Length] : "application/json");
        return new HttpRequestMessage(HttpMethod.Post, new Uri(api, path)) { Content = content };
    }

    private static async Task SendAsync(HttpClient client, HttpRequestMessage request, byte[] body, EndpointCounts counts)
    {
        var what = $"POST {request.RequestUri!.AbsolutePath} ({request.Content!.Headers.ContentType}, {request.Content.Headers.ContentEncoding})";
        try
        {
            using var response = await client.SendAsync(request);
            var text = await response.Content.ReadAsStringAsync();
            var status = (int)response.StatusCode;
            lock (counts) counts.Requests++;
            counts.Count($"{request.RequestUri.AbsolutePath.Split('/')[2]} {status}");
            // Kestrel refuses a path holding a NUL byte before any endpoint runs: a 400 with no body, not a crash.
            if (status == 400 && text.Length == 0 && request.RequestUri.AbsolutePath.Contains("%00", StringComparison.Ordinal))
                counts.Count("kestrel 400: NUL in the path");
            else if (status >= 500 && response.StatusCode != HttpStatusCode.ServiceUnavailable)
                counts.Fail($"{what} answered {status}: {text}", body);
            else if (status >= 400 && !HasReason(response, text))
                counts.Fail($"{what} answered {status} without a problem's reason: {text}", body);
        }
        catch (HttpRequestException e)
        {
            counts.Fail($"{what} lost its connection: {e.Message}", body);
        }
        finally
        {
            request.Dispose();
        }
    }

    /// <summary>An RFC 9457 problem naming one of the reason codes; a 503 is that too (unavailable, with Retry-After), never a crash's 500.</summary>
    private static bool HasReason(HttpResponseMessage response, string text)
    {
        if (response.Content.Headers.ContentType?.MediaType != "application/problem+json") return false;
        try
        {
            using var problem = JsonDocument.Parse(text);
            return problem.RootElement.TryGetProperty("reason", out var reason) && reason.ValueKind == JsonValueKind.String && reason.GetString()!.Length > 0;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static ByteArrayContent Gzip(byte[] body, bool whole)
    {
        using var buffer = new MemoryStream();
        using (var gzip = new GZipStream(buffer, CompressionLevel.Fastest, leaveOpen: true)) gzip.Write(body);
        var compressed = buffer.ToArray();
        return new ByteArrayContent(whole ? compressed : compressed[..(compressed.Length / 2)]);
    }

    /// <summary>
    /// Publishes hostile bodies as <paramref name="device"/>, logged in over MQTT 5, QoS 1: mostly to its own topic, some to
    /// another device's and to malformed topics. A refused publish gets a PUBACK with a reason code; when the endpoint
    /// closes the connection (a packet over its size limit) the device logs in again. A connection that cannot be made
    /// again is a failure.
    /// </summary>
    public static async Task<EndpointCounts> MqttAsync(string host, int port, EthKey device, ulong seed, int count)
    {
        var counts = new EndpointCounts();
        var address = device.Address.ToLowerHex();
        IMqttClient? client = null;
        var connections = 0;
        var index = 0;
        foreach (var (body, _) in FuzzBodies.Samples(FuzzBodies.ReadingsBody, seed, stream: 7))
        {
            if (index == count) break;
            var topic = (index % 20) switch
            {
                0 => "devices/0x" + new string('b', 40) + "/readings",
                1 => $"devices/{address}/readings/extra",
                2 => $"devices/{address.ToUpperInvariant()}/readings",
                _ => $"devices/{address}/readings",
            };
            index++;
            try
            {
                if (client is not { IsConnected: true })
                {
                    client?.Dispose();
                    client = await ConnectAsync(host, port, device, $"fuzz-{connections++}");
                }
                var message = new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(body).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build();
                var result = await client.PublishAsync(message);
                counts.Requests++;
                counts.Count($"puback {result.ReasonCode}");
            }
            catch (MQTTnet.Exceptions.MqttCommunicationException) when (body.Length > 60_000)
            {
                // The endpoint closes a connection whose packet is over its limit (64 KiB) before buffering it: a refusal.
                counts.Requests++;
                counts.Count("closed: packet over the limit");
                client?.Dispose();
                client = null;
            }
            catch (Exception e) when (e is MQTTnet.Exceptions.MqttCommunicationException or OperationCanceledException or InvalidOperationException)
            {
                counts.Requests++;
                counts.Count("connection lost");
                counts.Fail($"MQTT publish of {body.Length} bytes to {topic} lost the connection: {e.GetType().Name}: {e.Message}", body);
            }
        }
        if (client is { IsConnected: true }) await client.DisconnectAsync();
        client?.Dispose();
        counts.Count($"connections {connections}");
        return counts;
    }

    private static async Task<IMqttClient> ConnectAsync(string host, int port, EthKey device, string clientId)
    {
        var client = new MqttClientFactory().CreateMqttClient();
        var options = new MqttClientOptionsBuilder()
            .WithTcpServer(host, port)
            .WithClientId(clientId)
            .WithCredentials(device.Address.ToLowerHex(), DeviceLogin.Password(device, clientId, DateTimeOffset.UtcNow))
            .WithProtocolVersion(MqttProtocolVersion.V500)
            .WithTimeout(TimeSpan.FromSeconds(10))
            .Build();
        var connected = await client.ConnectAsync(options);
        if (connected.ResultCode != MqttClientConnectResultCode.Success)
            throw new InvalidOperationException($"The MQTT endpoint refused the login: {connected.ResultCode} {connected.ReasonString}");
        return client;
    }

    /// <summary>
    /// After the fuzz, an honest device still gets through: its owner registers it (201), a reading it signed is accepted
    /// over HTTP (202) and the next over MQTT (PUBACK success). Throws, saying which step failed, otherwise.
    /// </summary>
    public static async Task CheckHonestDeviceAsync(Uri ingest, Uri api, string mqttHost, int mqttPort)
    {
        using var client = new HttpClient { Timeout = TimeSpan.FromSeconds(30) };
        var owner = EthKey.Generate();
        var device = EthKey.Generate();
        var message = new RegistrationMessage(device.Address, owner.Address, DeviceKind.Vehicle,
            new Dictionary<string, string> { ["make"] = "Volvo", ["model"] = "V40", ["year"] = "2015", ["firmware"] = "2.1" }, DateTimeOffset.UtcNow, RegistryDomain.Dev);
        using var registered = await client.PostAsJsonAsync(new Uri(api, "/v1/devices"), RegisterDeviceRequest.Signed(message, owner, device));
        if (registered.StatusCode != HttpStatusCode.Created)
            throw new InvalidOperationException($"An honest registration got {(int)registered.StatusCode}: {await registered.Content.ReadAsStringAsync()}");

        var payload = ReadingWriter.Payload(device.Address, 1, DateTimeOffset.UtcNow, DeviceKind.Vehicle, [new("Vehicle.Speed", 54.2)]);
        using var content = new ByteArrayContent(ReadingWriter.Sign(device, payload));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var accepted = await client.PostAsync(new Uri(ingest, "/v1/readings"), content);
        if (accepted.StatusCode != HttpStatusCode.Accepted)
            throw new InvalidOperationException($"An honest reading got {(int)accepted.StatusCode}: {await accepted.Content.ReadAsStringAsync()}");

        using var mqtt = await ConnectAsync(mqttHost, mqttPort, device, "honest");
        var next = ReadingWriter.Payload(device.Address, 2, DateTimeOffset.UtcNow, DeviceKind.Vehicle, [new("Vehicle.Speed", 61.8)]);
        var published = await mqtt.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"devices/{device.Address.ToLowerHex()}/readings")
            .WithPayload(ReadingWriter.Sign(device, next)).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        if (published.ReasonCode != MqttClientPublishReasonCode.Success)
            throw new InvalidOperationException($"An honest MQTT publish got {published.ReasonCode}: {published.ReasonString}");
        await mqtt.DisconnectAsync();
    }
}
