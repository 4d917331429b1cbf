using System.Net.Http.Json;
using System.Text.Json;
using Pipeline.Cli.Hosting;
using Pipeline.Simulator;

namespace Pipeline.Tests.Integration.Api;

/// <summary>The API says what is true (issue 11): enums are their names on the wire, and the document describes only what exists.</summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class WireFormatTests(StackFixture fixture)
{
    [Fact]
    public async Task OpenApiDocument_HasNoIntegerEnums_AndDescribesOnlyWhatExists()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.All, schema: "it_wire_openapi");
        var document = await host.Api.GetFromJsonAsync<JsonElement>("/openapi/v1.json");

        var enums = Schemas(document).Where(s => s.TryGetProperty("enum", out _)).ToList();
        Assert.NotEmpty(enums);
        Assert.All(enums, schema =>
        {
            // A nullable enum lists null beside its names; never a number.
            Assert.All(schema.GetProperty("enum").EnumerateArray(), value => Assert.Contains(value.ValueKind, new[] { JsonValueKind.String, JsonValueKind.Null }));
            Assert.False(schema.TryGetProperty("type", out var type) && type.ToString().Contains("integer", StringComparison.Ordinal), schema.ToString());
        });
        var kind = document.GetProperty("components").GetProperty("schemas").GetProperty("DeviceKind");
        Assert.Equal(["vehicle", "weather"], kind.GetProperty("enum").EnumerateArray().Select(v => v.GetString()));

        var description = document.GetProperty("info").GetProperty("description").GetString()!;
        var paths = document.GetProperty("paths").EnumerateObject().Select(p => p.Name).ToList();
        Assert.Contains("/v1/datasets", paths);
        // Rewards are served (issue 14): the paths the web app builds on, and the description says so.
        Assert.Contains("/v1/chain", paths);
        Assert.Contains("/v1/rewards/epochs", paths);
        Assert.Contains("/v1/rewards/contributors/{address}/proof", paths);
        Assert.Contains("/v1/rewards/contributors/{address}/epochs/{epoch}/explain", paths);
        Assert.Contains("claim proofs", description, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task RegisteredDevice_IsReturnedWithItsKindByName()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Api | Roles.Ingest, schema: "it_wire_device");
        // Registered the way every client registers (the simulator signs as owner and as device).
        var run = await new Simulation(host.Fleet(new SimulatorOptions { Vehicles = 1, Stations = 1, Duration = TimeSpan.FromMilliseconds(1) }), TimeProvider.System).RunAsync(CancellationToken.None);

        foreach (var device in run.Fleet.Devices)
        {
            var body = await host.Api.GetStringAsync($"/v1/devices/{device.Address}");
            var json = JsonDocument.Parse(body).RootElement;
            Assert.Equal(device.Kind == Pipeline.Core.Envelope.DeviceKind.Vehicle ? "vehicle" : "weather", json.GetProperty("kind").GetString());
            var owned = JsonDocument.Parse(await host.Api.GetStringAsync($"/v1/owners/{device.Owner.Address}/devices")).RootElement;
            Assert.All(owned.EnumerateArray(), d => Assert.Equal(JsonValueKind.String, d.GetProperty("kind").ValueKind));
        }
    }

    /// <summary>Every schema object in the document, nested ones included.</summary>
    private static IEnumerable<JsonElement> Schemas(JsonElement element)
    {
        if (element.ValueKind == JsonValueKind.Object)
        {
            if (element.TryGetProperty("enum", out _) || element.TryGetProperty("type", out _)) yield return element;
            foreach (var property in element.EnumerateObject())
                foreach (var nested in Schemas(property.Value)) yield return nested;
        }
        else if (element.ValueKind == JsonValueKind.Array)
        {
            foreach (var item in element.EnumerateArray())
                foreach (var nested in Schemas(item)) yield return nested;
        }
    }
}
