using System.Net.Sockets;
using System.Text;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using Pipeline.Cli.Hosting;
using Pipeline.Core.Crypto;

namespace Pipeline.Tests.Integration.Ingest;

/// <summary>What a stranger with a socket can do to the MQTT endpoint: little, and only to themselves.</summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class MqttSecurityTests(StackFixture fixture)
{
    private const int Declared = 200_000_000;

    [Fact]
    public async Task PacketDeclaringHundredsOfMegabytes_BeforeOrAfterLogin_ClosesTheConnection_WithoutBeingBuffered_Issue10()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Ingest);

        // Before any login: a CONNECT that says it is 200 MB long.
        using (var stranger = await ConnectSocketAsync(host))
        {
            var allocated = GC.GetTotalAllocatedBytes(precise: true);
            await stranger.GetStream().WriteAsync(Header(0x10, Declared));
            Assert.True(await ClosedAsync(stranger), "The connection stayed open after a 200 MB CONNECT header.");
            Assert.InRange(GC.GetTotalAllocatedBytes(precise: true) - allocated, 0, 50_000_000);
        }

        // Logged in: a PUBLISH that says it is 200 MB long.
        var device = new TestDevice("mqtt-huge");
        using var client = await ConnectSocketAsync(host);
        var stream = client.GetStream();
        await stream.WriteAsync(Connect311("huge", device.Address, DeviceLogin.Password(device.Key, "huge", DateTimeOffset.UtcNow)));
        var connAck = new byte[4];
        await stream.ReadExactlyAsync(connAck);
        Assert.Equal(new byte[] { 0x20, 0x02, 0x00, 0x00 }, connAck);
        var before = GC.GetTotalAllocatedBytes(precise: true);
        await stream.WriteAsync(Header(0x30, Declared));
        Assert.True(await ClosedAsync(client), "The connection stayed open after a 200 MB PUBLISH header.");
        Assert.InRange(GC.GetTotalAllocatedBytes(precise: true) - before, 0, 50_000_000);
        Assert.Empty(host.ReadAll(host.RawTopic));
    }

    [Fact]
    public async Task Mqtt5Client_LearnsTheMaximumPacketSize_AndCannotSubscribe()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Ingest);
        var device = new TestDevice("mqtt5-limits");
        using var client = new MqttClientFactory().CreateMqttClient();
        var connected = await client.ConnectAsync(Options(host, device, "limits"));
        Assert.Equal(64u * 1024, connected.MaximumPacketSize);

        var subscribed = await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter("devices/#").Build());
        Assert.Equal(MqttClientSubscribeResultCode.NotAuthorized, Assert.Single(subscribed.Items).ResultCode);
    }

    [Fact]
    public async Task ClientIdOfAConnectedDevice_CannotBeTakenOverByAnotherDevice_Issue10()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Ingest);
        var owner = new TestDevice("mqtt-session-owner");
        var intruder = new TestDevice("mqtt-session-intruder");
        using var ownerClient = new MqttClientFactory().CreateMqttClient();
        await ownerClient.ConnectAsync(Options(host, owner, "dongle-7"));

        using var intruderClient = new MqttClientFactory().CreateMqttClient();
        var refused = await intruderClient.ConnectAsync(Options(host, intruder, "dongle-7"));
        Assert.Equal(MqttClientConnectResultCode.ClientIdentifierNotValid, refused.ResultCode);

        // The owner keeps its session and publishes as before.
        var reading = owner.Next();
        var published = await ownerClient.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"devices/{owner.Address}/readings")
            .WithPayload(reading.Envelope).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        Assert.Equal(MqttClientPublishReasonCode.Success, published.ReasonCode);
        Assert.Single(host.ReadAll(host.RawTopic));
    }

    private static MqttClientOptions Options(TestHost host, TestDevice device, string clientId) => new MqttClientOptionsBuilder()
        .WithTcpServer("127.0.0.1", host.MqttPort)
        .WithClientId(clientId)
        .WithCredentials(device.Address, DeviceLogin.Password(device.Key, clientId, DateTimeOffset.UtcNow))
        .WithProtocolVersion(MqttProtocolVersion.V500)
        .Build();

    private static async Task<TcpClient> ConnectSocketAsync(TestHost host)
    {
        var client = new TcpClient();
        await client.ConnectAsync("127.0.0.1", host.MqttPort);
        return client;
    }

    /// <summary>True once the server has closed the connection (end of stream or reset), false if it is still open after 10 s.</summary>
    private static async Task<bool> ClosedAsync(TcpClient client)
    {
        try
        {
            var read = await client.GetStream().ReadAsync(new byte[64]).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            return read == 0;
        }
        catch (IOException)
        {
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    /// <summary>A fixed header: the packet type and flags, then the remaining length as MQTT's variable-length integer.</summary>
    private static byte[] Header(byte typeAndFlags, int remainingLength) => [typeAndFlags, .. RemainingLength(remainingLength)];

    private static byte[] RemainingLength(int length)
    {
        var bytes = new List<byte>();
        do
        {
            var digit = (byte)(length % 128);
            length /= 128;
            bytes.Add(length > 0 ? (byte)(digit | 0x80) : digit);
        }
        while (length > 0);
        return [.. bytes];
    }

    /// <summary>An MQTT 3.1.1 CONNECT with a clean session, username and password, written by hand.</summary>
    private static byte[] Connect311(string clientId, string username, string password)
    {
        var body = new List<byte>();
        void Text(string value)
        {
            var bytes = Encoding.UTF8.GetBytes(value);
            body.Add((byte)(bytes.Length >> 8));
            body.Add((byte)bytes.Length);
            body.AddRange(bytes);
        }
        Text("MQTT");
        body.AddRange([4, 0xC2, 0, 60]); // level 4, username + password + clean session, keep-alive 60 s
        Text(clientId);
        Text(username);
        Text(password);
        return [.. Header(0x10, body.Count), .. body];
    }
}
