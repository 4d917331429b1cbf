using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Pipeline.Cli.Hosting;
using Pipeline.Core.Envelope;
using Pipeline.Core.Kafka;

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
            var (exit, output) = await PublishAsync(host, $"devices/{device.Address}/readings", reading.Envelope, protocol);
            Assert.True(exit == 0, output);
            sent.Add(reading.Id);
        }

        var messages = host.ReadAll(host.RawTopic).OrderBy(m => m.Offset.Value).ToList();
        Assert.Equal(sent, messages.Select(m => EnvelopeParser.Parse(m.Message.Value, EnvelopeLimits.Default).Reading!.Id));
        Assert.All(messages, m => Assert.Equal(device.Address, m.Message.Key));
        Assert.All(messages, m => Assert.Equal("mqtt", Encoding.ASCII.GetString(m.Message.Headers.GetLastBytes(HeaderNames.Transport))));
    }

    [Fact]
    public async Task RefusedPublish_GoesToTheDeadLetterTopicWithItsReason_AndMqtt5SeesTheReasonCode()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Ingest, new Dictionary<string, string?> { ["Ingest:VerifySignatures"] = "true" });
        var device = new TestDevice("mqtt-refused");
        var forged = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(device.Next().Envelope).Replace("\"sig\":\"0x", "\"sig\":\"0xff"));
        var (_, output) = await PublishAsync(host, $"devices/{device.Address}/readings", TrimSignature(forged), "mqttv5");
        Assert.Matches(PubAck(0x99), output); // payload format invalid

        var other = new TestDevice("mqtt-other");
        await PublishAsync(host, $"devices/{other.Address}/readings", device.Next().Envelope, "mqttv311");
        await PublishAsync(host, "sensors/elsewhere", device.Next().Envelope, "mqttv311");

        Assert.Empty(host.ReadAll(host.RawTopic));
        var dead = host.ReadAll(host.RejectedTopic);
        Assert.Equal(["bad_address", "bad_address", "bad_signature"], dead.Select(m => Encoding.UTF8.GetString(m.Message.Headers.GetLastBytes(HeaderNames.Reason))).Order());
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
        var dongle = "dongle-" + Guid.NewGuid().ToString("N")[..12];
        var first = Enumerable.Range(0, 3).Select(_ => device.Next()).ToList();
        var (firstExit, firstOutput) = await PublishAsync(host, $"devices/{device.Address}/readings", HttpIngestTests.JsonArray(first.Select(r => r.Envelope)), protocol, dongle);
        Assert.True(firstExit == 0, firstOutput);

        // Three more at once from the same client need three seconds of refill: refused whole, to be sent again later.
        var (exit, output) = await PublishAsync(host, $"devices/{device.Address}/readings", HttpIngestTests.JsonArray(Enumerable.Range(0, 3).Select(_ => device.Next().Envelope)), protocol, dongle);
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

    /// <summary>One publish with QoS 1 by mosquitto_pub -d, as <paramref name="clientId"/> or a fresh client.</summary>
    internal static async Task<(int Exit, string Output)> PublishAsync(TestHost host, string topic, byte[] message, string protocol, string? clientId = null)
    {
        var file = Path.GetTempFileName();
        await File.WriteAllBytesAsync(file, message);
        var start = new ProcessStartInfo("mosquitto_pub") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in new[] { "-h", "127.0.0.1", "-p", $"{host.MqttPort}", "-i", clientId ?? "test-" + Guid.NewGuid().ToString("N")[..12], "-q", "1", "-V", protocol, "-t", topic, "-f", file, "-d" })
            start.ArgumentList.Add(argument);
        using var process = Process.Start(start)!;
        var output = await process.StandardOutput.ReadToEndAsync() + await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        File.Delete(file);
        return (process.ExitCode, output);
    }
}
