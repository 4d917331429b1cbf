using Pipeline.Cli.Hosting;
using Pipeline.Core.Crypto;
using Pipeline.Tests.Support.Fuzz;
using Xunit.Abstractions;

namespace Pipeline.Tests.Integration.Fuzz;

/// <summary>
/// A fixed-seed slice of the endpoint fuzz (`./depin bench fuzz` sends more than 10,000): hostile bodies over HTTP to
/// ingest and the registry and over MQTT, against a running host. No 5xx, every refusal a problem with a reason, no
/// connection lost, and an honest device registers and sends afterwards.
/// </summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class EndpointFuzzTests(StackFixture fixture, ITestOutputHelper output)
{
    private const ulong Seed = 20261205;

    /// <summary>Rates high enough that the bodies reach the parsers instead of the rate limits.</summary>
    public static readonly Dictionary<string, string?> Unlimited = new()
    {
        ["Ingest:ClientRequestsPerSecond"] = "1000000", ["Ingest:ClientBurst"] = "1000000",
        ["Ingest:DeviceReadingsPerSecond"] = "1000000", ["Ingest:DeviceBurst"] = "1000000",
        ["Registry:Limits:ClientWritesPerSecond"] = "1000000", ["Registry:Limits:ClientWriteBurst"] = "1000000",
    };

    [Fact]
    public async Task RunningEndpoints_HostileHttpAndMqttBodies_NoServerErrorAndAnHonestDeviceStillServed()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Api | Roles.Ingest, Unlimited, schema: "it_endpoint_fuzz");

        var http = await EndpointFuzz.HttpAsync(host.Ingest.BaseAddress!, host.Api.BaseAddress!, Seed, 1_500);
        var mqtt = await EndpointFuzz.MqttAsync("127.0.0.1", host.MqttPort, EthKey.Generate(), Seed, 500);

        output.WriteLine(string.Join(", ", http.Answers.Concat(mqtt.Answers).Select(a => $"{a.Key}: {a.Value}")));
        foreach (var failure in http.Failures.Concat(mqtt.Failures).Take(10)) output.WriteLine(failure);
        Assert.Empty(http.Failures.Concat(mqtt.Failures));
        Assert.Equal(1_500, http.Requests);
        Assert.Equal(500, mqtt.Requests);
        // The bodies reach past the door: some readings are taken, and refusals come from the parsers, not only the media type.
        Assert.True(http.Answers.GetValueOrDefault("readings 202") > 50, "some fuzzed readings are well-formed enough to be accepted");
        Assert.True(http.Answers.GetValueOrDefault("devices 400") > 50, "the registry parses and refuses fuzzed typed data");
        Assert.True(mqtt.Answers.GetValueOrDefault("puback PayloadFormatInvalid") > 100, "the MQTT endpoint reads and refuses fuzzed readings (their devices are not the logged-in one)");
        await EndpointFuzz.CheckHonestDeviceAsync(host.Ingest.BaseAddress!, host.Api.BaseAddress!, "127.0.0.1", host.MqttPort);
    }
}
