using System.Text.Json;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Unit.Deployment;

/// <summary>The Akash SDL, validated and turned into a deployment manifest by Akash's own SDK (@akashnetwork/akashjs, from infra/tools).</summary>
public sealed class AkashSdlTests
{
    [Fact]
    public void AkashSdl_IsValidForAkashjs_AndDeploysEveryStageAndServer()
    {
        var output = RepositoryTools.Node(
            """
            const { SDL } = require('@akashnetwork/akashjs/build/sdl');
            const sdl = SDL.fromString(require('fs').readFileSync(process.argv[1], 'utf8'), 'beta3');
            const services = sdl.manifest().flatMap(group => group.services);
            console.log(JSON.stringify(services.map(s => ({ name: s.name, count: s.count, image: s.image, args: s.args, env: s.env }))));
            """,
            DeploymentFiles.Read("akash", "deploy.yaml"));

        var services = JsonSerializer.Deserialize<List<AkashService>>(output, JsonSerializerOptions.Web)!.ToDictionary(s => s.Name);
        Assert.Equal(["ingest", "kafka-1", "kafka-2", "kafka-3", "lake", "postgres", "streams"], services.Keys.Order());
        Assert.Equal(["ingest"], services["ingest"].Args);
        Assert.Equal(["streams"], services["streams"].Args);
        Assert.True(services["streams"].Count >= 2);
        Assert.True(services["ingest"].Count >= 2);
        // The lake's writer and reader share one service (Akash volumes are per service), so there is one of it.
        Assert.Equal(1, services["lake"].Count);
        Assert.Contains("depin.dll projections", string.Join(" ", services["lake"].Args!), StringComparison.Ordinal);
        // The rewards stage reads the lake and writes its reward files there, so it runs in that service too, once.
        Assert.Contains("depin.dll rewards-stage", string.Join(" ", services["lake"].Args!), StringComparison.Ordinal);
        Assert.Contains(services["lake"].Env!, e => e.StartsWith("PIPELINE_CHAIN=http", StringComparison.Ordinal));
        Assert.Contains(services["lake"].Env!, e => e.StartsWith("PIPELINE_Chain__OperatorKey=", StringComparison.Ordinal));
        foreach (var broker in new[] { "kafka-1", "kafka-2", "kafka-3" })
        {
            Assert.Contains("KAFKA_DEFAULT_REPLICATION_FACTOR=3", services[broker].Env!);
            Assert.Contains("KAFKA_MIN_INSYNC_REPLICAS=2", services[broker].Env!);
            Assert.Contains("KAFKA_PROCESS_ROLES=broker,controller", services[broker].Env!);
        }
        var bootstrap = services.Values.Where(s => s.Image.Contains("depin", StringComparison.Ordinal)).Select(s => s.Env!.Single(e => e.StartsWith("PIPELINE_KAFKA=", StringComparison.Ordinal))).Distinct();
        Assert.Single(bootstrap);
    }

    private sealed record AkashService(string Name, int Count, string Image, List<string>? Args, List<string>? Env);
}
