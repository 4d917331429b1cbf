using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Pipeline.Cli.Hosting;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Core.Kafka;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Ingest;

/// <summary>The MQTT endpoint, driven by the real mosquitto_pub client.</summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class MqttIngestTests(StackFixture fixture)
{
    [Theory]
    [InlineData("mqttv311")]
    [InlineData("mqttv5")]
    public async Task MosquittoPub_QoS1_ReadingsArriveOnceInOrder(string protocol)
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Ingest);
        var device = new TestDevice("mqtt-" + protocol);
        var sent = new List<string>();
        for (var i = 0; i < 10; i++)
        {
            var reading = device.Next();
            var (exit, output) = await PublishAsync(host, device, reading.Envelope, protocol);
            Assert.True(exit == 0, output);
            sent.Add(reading.Id);
        }

        var messages = host.ReadAll(host.RawTopic).OrderBy(m => m.Offset.Value).ToList();
        Assert.Equal(sent, messages.Select(m => EnvelopeParser.Parse(m.Message.Value, EnvelopeLimits.Default).Reading!.Id));
        Assert.All(messages, m => Assert.Equal(device.Address, m.Message.Key));
        Assert.All(messages, m => Assert.Equal("mqtt", Encoding.ASCII.GetString(m.Message.Headers.GetLastBytes(HeaderNames.Transport))));
    }

    [Theory]
    [InlineData("mqttv311")]
    [InlineData("mqttv5")]
    public async Task MosquittoPub_WithoutAClientId_IsAssignedOne_WithAPasswordMadeByCast_Issue10(string protocol)
    {
        // As the README shows it: no -i, the login signed by foundry's cast over an empty client id.
        await using var host = await TestHost.StartAsync(fixture, Roles.Ingest);
        var device = new TestDevice("mqtt-no-id-" + protocol);
        var time = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var signature = RepositoryTools.Run(RepositoryTools.Cast, ["wallet", "sign", "--private-key", device.Key.ToHex(), $"depin mqtt login time={time} client="]);
        var reading = device.Next();

        var (exit, output) = await PublishAsync(host, device, reading.Envelope, protocol, clientId: "", password: $"{time}:{signature}");
        Assert.True(exit == 0, output);
        Assert.Equal([reading.Id], host.ReadAll(host.RawTopic).Select(m => EnvelopeParser.Parse(m.Message.Value, EnvelopeLimits.Default).Reading!.Id));
    }

    [Fact]
    public async Task Connect_WithoutAFreshLoginSignedByTheDevice_IsRefused_AndALoginWorksOnlyOnce_Issue10()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Ingest);
        var device = new TestDevice("mqtt-login");
        var stranger = new TestDevice("mqtt-stranger");
        var now = DateTimeOffset.UtcNow;
        var envelope = device.Next().Envelope;

        // No credentials at all; another key's login; a login from two minutes ago; one for another client id.
        Assert.NotEqual(0, (await PublishAsync(host, device, envelope, "mqttv311", password: "", username: "")).Exit);
        Assert.NotEqual(0, (await PublishAsync(host, device, envelope, "mqttv5", clientId: "dongle", password: DeviceLogin.Password(stranger.Key, "dongle", now))).Exit);
        Assert.NotEqual(0, (await PublishAsync(host, device, envelope, "mqttv311", clientId: "dongle", password: DeviceLogin.Password(device.Key, "dongle", now.AddMinutes(-2)))).Exit);
        var (refusedExit, refusedOutput) = await PublishAsync(host, device, envelope, "mqttv5", clientId: "dongle", password: DeviceLogin.Password(device.Key, "other-dongle", now));
        Assert.NotEqual(0, refusedExit);
        Assert.Contains("bad user name or password", refusedOutput, StringComparison.OrdinalIgnoreCase);
        Assert.Empty(host.ReadAll(host.RawTopic));

        // A good login connects once; seen on the wire and sent again, it is refused.
        var login = DeviceLogin.Password(device.Key, "dongle", now);
        Assert.Equal(0, (await PublishAsync(host, device, envelope, "mqttv311", clientId: "dongle", password: login)).Exit);
        Assert.NotEqual(0, (await PublishAsync(host, device, device.Next().Envelope, "mqttv311", clientId: "dongle", password: login)).Exit);
        Assert.Single(host.ReadAll(host.RawTopic));
    }

    [Theory]
    [InlineData("mqttv311")]
    [InlineData("mqttv5")]
    public async Task Device_PublishingWhereItMayNot_IsRefused_AndNothingIsProducedNorDeadLettered_Issue10(string protocol)
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Ingest);
        var device = new TestDevice("mqtt-topic-" + protocol);
        var victim = new TestDevice("mqtt-victim-" + protocol);

        var (otherExit, otherOutput) = await PublishAsync(host, device, victim.Next().Envelope, protocol, topic: $"devices/{victim.Address}/readings");
        var (badExit, badOutput) = await PublishAsync(host, device, device.Next().Envelope, protocol, topic: "sensors/elsewhere");
        if (protocol == "mqttv5")
        {
            Assert.Matches(PubAck(0x87), otherOutput); // not authorized
            Assert.Matches(PubAck(0x90), badOutput); // topic name invalid
        }
        else
        {
            // 3.1.1 has no negative PUBACK: the connection is closed instead.
            Assert.True(otherExit != 0 && badExit != 0, otherOutput + badOutput);
            Assert.DoesNotContain("received PUBACK", otherOutput + badOutput);
        }
        Assert.Empty(host.ReadAll(host.RawTopic));
        Assert.Empty(host.ReadAll(host.RejectedTopic));
    }

    [Fact]
    public async Task RefusedPublish_GoesToTheDeadLetterTopicWithItsReason_AndMqtt5SeesTheReasonCode()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Ingest, new Dictionary<string, string?> { ["Ingest:VerifySignatures"] = "true" });
        var device = new TestDevice("mqtt-refused");
        var forged = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(device.Next().Envelope).Replace("\"sig\":\"0x", "\"sig\":\"0xff"));
        var (_, output) = await PublishAsync(host, device, TrimSignature(forged), "mqttv5");
        Assert.Matches(PubAck(0x99), output); // payload format invalid
        await PublishAsync(host, device, Encoding.UTF8.GetBytes("{not json"), "mqttv311");

        Assert.Empty(host.ReadAll(host.RawTopic));
        var dead = host.ReadAll(host.RejectedTopic);
        Assert.Equal(["bad_signature", "malformed"], dead.Select(m => Encoding.UTF8.GetString(m.Message.Headers.GetLastBytes(HeaderNames.Reason))).Order());
        Assert.All(dead, m => Assert.StartsWith("mqtt:", Encoding.UTF8.GetString(m.Message.Headers.GetLastBytes(HeaderNames.Source))));
        Assert.All(dead, m => Assert.NotEmpty(Encoding.UTF8.GetString(m.Message.Headers.GetLastBytes(HeaderNames.Detail))));
    }

    [Theory]
    [InlineData("mqttv311")]
    [InlineData("mqttv5")]
    public async Task ThrottledPublish_IsNeitherAcknowledgedAsSuccessNorDeadLettered(string protocol)
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Ingest, new Dictionary<string, string?>
        {
            ["Ingest:DeviceBurst"] = "3",
            ["Ingest:DeviceReadingsPerSecond"] = "1",
        });
        var device = new TestDevice("mqtt-throttled-" + protocol);
        var first = Enumerable.Range(0, 3).Select(_ => device.Next()).ToList();
        var (firstExit, firstOutput) = await PublishAsync(host, device, HttpIngestTests.JsonArray(first.Select(r => r.Envelope)), protocol, clientId: "dongle");
        Assert.True(firstExit == 0, firstOutput);

        // Three more at once need three seconds of refill: refused whole, to be sent again later. Another client id
        // does not buy the device a second bucket: every limit is the authenticated device's.
        var (exit, output) = await PublishAsync(host, device, HttpIngestTests.JsonArray(Enumerable.Range(0, 3).Select(_ => device.Next().Envelope)), protocol, clientId: "another-dongle");
        if (protocol == "mqttv5")
        {
            Assert.Matches(PubAck(0x97), output); // quota exceeded
        }
        else
        {
            // 3.1.1 has no negative PUBACK: none at all, and the connection is closed.
            Assert.NotEqual(0, exit);
            Assert.DoesNotContain("received PUBACK", output);
        }

        var stored = host.ReadAll(host.RawTopic).Select(m => EnvelopeParser.Parse(m.Message.Value, EnvelopeLimits.Default).Reading!.Id);
        Assert.Equal(first.Select(r => r.Id).Order(), stored.Order());
        Assert.Empty(host.ReadAll(host.RejectedTopic));
    }

    /// <summary>What mosquitto_pub -d prints for a PUBACK with this MQTT 5 reason code.</summary>
    private static Regex PubAck(int reasonCode) => new($@"received PUBACK \(Mid: \d+, RC:{reasonCode}\)");

    private static byte[] TrimSignature(byte[] envelope)
    {
        // "0xff" + 130 hex digits is 132 digits: drop two so the signature has the right length but the wrong bytes.
        var text = Encoding.UTF8.GetString(envelope);
        var end = text.LastIndexOf('"');
        return Encoding.UTF8.GetBytes(text.Remove(end - 2, 2));
    }

    /// <summary>
    /// One publish with QoS 1 by mosquitto_pub -d, logged in as <paramref name="device"/> (a fresh login unless a password
    /// is given), as <paramref name="clientId"/> or a fresh client id ("" for none: no -i), to the device's own topic unless told.
    /// </summary>
    internal static async Task<(int Exit, string Output)> PublishAsync(TestHost host, TestDevice device, byte[] message, string protocol,
        string? clientId = null, string? password = null, string? topic = null, string? username = null)
    {
        clientId ??= "test-" + Guid.NewGuid().ToString("N")[..12];
        password ??= DeviceLogin.Password(device.Key, clientId, DateTimeOffset.UtcNow);
        username ??= device.Address;
        var file = Path.GetTempFileName();
        await File.WriteAllBytesAsync(file, message);
        var start = new ProcessStartInfo("mosquitto_pub") { RedirectStandardOutput = true, RedirectStandardError = true };
        var arguments = new List<string> { "-h", "127.0.0.1", "-p", $"{host.MqttPort}", "-q", "1", "-V", protocol, "-t", topic ?? $"devices/{device.Address}/readings", "-f", file, "-d" };
        if (clientId.Length > 0) arguments.AddRange(["-i", clientId]);
        if (username.Length > 0) arguments.AddRange(["-u", username, "-P", password]);
        foreach (var argument in arguments) start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        var output = await process.StandardOutput.ReadToEndAsync() + await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        File.Delete(file);
        return (process.ExitCode, output);
    }
}
