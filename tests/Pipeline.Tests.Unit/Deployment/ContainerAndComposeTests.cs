using System.Diagnostics;
using YamlDotNet.Core;
using YamlDotNet.Serialization;

namespace Pipeline.Tests.Unit.Deployment;

/// <summary>
/// The image and the Compose file, checked statically: no container runtime runs here. The Compose file is read as
/// YAML (anchors and merge keys resolved, as Compose does) and its structure checked; where the Docker Compose plugin
/// is installed, `docker compose config` must accept it as well.
/// </summary>
public sealed class ContainerAndComposeTests
{
    private static readonly Dictionary<object, object> Compose = ReadCompose();
    private static Dictionary<object, object> Services => Map(Compose["services"]);

    [Fact]
    public void Dockerfile_BuildsInOneStageAndRunsInAnother_AsTheImagesUnprivilegedUser_WithAHealthCheck()
    {
        var lines = DeploymentFiles.Read("Dockerfile").Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        var stages = lines.Where(l => l.StartsWith("FROM ", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, stages.Count);
        Assert.Contains("dotnet/sdk:10.0", stages[0], StringComparison.Ordinal);
        Assert.Contains("dotnet/aspnet:10.0", stages[1], StringComparison.Ordinal);
        var runtime = lines.SkipWhile(l => l != stages[1]).ToList();
        Assert.Contains(runtime, l => l.StartsWith("COPY --from=build", StringComparison.Ordinal));
        Assert.Contains(runtime, l => l.Contains("libsecp256k1-1", StringComparison.Ordinal));
        var user = runtime.Last(l => l.StartsWith("USER ", StringComparison.Ordinal));
        Assert.Equal("USER $APP_UID", user);
        Assert.True(runtime.IndexOf(user) > runtime.FindLastIndex(l => l.StartsWith("RUN ", StringComparison.Ordinal)), "nothing runs as root after USER");
        var healthCheck = string.Join(" ", runtime.SkipWhile(l => !l.StartsWith("HEALTHCHECK", StringComparison.Ordinal)).Take(2));
        Assert.Contains("/health", healthCheck, StringComparison.Ordinal);
        Assert.Contains("${DEPIN_HEALTH_PORT}", healthCheck, StringComparison.Ordinal);
        Assert.Contains(runtime, l => l == "ENTRYPOINT [\"dotnet\", \"depin.dll\"]");
    }

    [Fact]
    public void Compose_Kafka_IsThreeKRaftBrokers_WithReplicationThreeAndMinInsyncTwo()
    {
        var brokers = Services.Keys.Cast<string>().Where(s => s.StartsWith("kafka-", StringComparison.Ordinal)).ToList();
        Assert.Equal(["kafka-1", "kafka-2", "kafka-3"], brokers);
        foreach (var broker in brokers)
        {
            var service = Map(Services[broker]);
            var env = Map(service["environment"]);
            Assert.Equal("broker,controller", env["KAFKA_PROCESS_ROLES"]);
            Assert.Equal("1@kafka-1:9093,2@kafka-2:9093,3@kafka-3:9093", env["KAFKA_CONTROLLER_QUORUM_VOTERS"]);
            Assert.Equal(broker[^1..], env["KAFKA_NODE_ID"]);
            Assert.Equal($"PLAINTEXT://{broker}:9092", env["KAFKA_ADVERTISED_LISTENERS"]);
            Assert.Equal("3", env["KAFKA_DEFAULT_REPLICATION_FACTOR"]);
            Assert.Equal("2", env["KAFKA_MIN_INSYNC_REPLICAS"]);
            Assert.Equal("3", env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]);
            Assert.Equal("false", env["KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE"]);
            Assert.Equal(DeploymentFiles.Partitions, env["KAFKA_NUM_PARTITIONS"]);
            Assert.NotNull(Map(service["healthcheck"])["test"]);
            Assert.Single(List(service["volumes"]));
        }
    }

    [Fact]
    public void Compose_EveryStage_IsItsOwnServiceOfTheImage_OnTheSameBrokersAndDatabase_WithItsHealthPort()
    {
        var stages = Services.Where(s => Map(s.Value).ContainsKey("command")).ToDictionary(s => (string)s.Key, s => Map(s.Value));
        Assert.Equal(DeploymentFiles.StageHealthPorts.Keys.Order(), stages.Keys.Order());
        var bootstrap = new HashSet<object>();
        foreach (var (name, service) in stages)
        {
            Assert.Equal([name], List(service["command"]));
            Assert.Equal("infra/deploy/Dockerfile", Map(service["build"])["dockerfile"]);
            var env = Map(service["environment"]);
            Assert.Equal($"{DeploymentFiles.StageHealthPorts[name]}", env["DEPIN_HEALTH_PORT"]);
            Assert.Equal("0.0.0.0", env["PIPELINE_LISTEN"]);
            Assert.Equal(DeploymentFiles.Partitions, env["PIPELINE_PARTITIONS"]);
            Assert.StartsWith("Host=postgres;", (string)env["PIPELINE_POSTGRES"], StringComparison.Ordinal);
            bootstrap.Add(env["PIPELINE_KAFKA"]);
            Assert.Equal(["kafka-1", "kafka-2", "kafka-3", "postgres"], Map(service["depends_on"]).Keys.Cast<string>().Order());
            Assert.All(Map(service["depends_on"]).Values, d => Assert.Equal("service_healthy", Map(d)["condition"]));
            Assert.NotNull(Map(Map(Map(service["deploy"])["resources"])["limits"])["memory"]);
        }
        Assert.Equal(["kafka-1:9092,kafka-2:9092,kafka-3:9092"], bootstrap);
        // Replicas where a stage scales; one API (export jobs in memory); two projectors, of which one leads.
        Assert.True(Replicas(stages["streams"]) >= 2);
        Assert.True(Replicas(stages["ingest"]) >= 2);
        Assert.Equal(2, Replicas(stages["projections"]));
        Assert.Equal(1, Replicas(stages["api"]));
        // The projector writes the lake the marketplace and the rewards stage read.
        Assert.Equal(["lake:/data"], List(stages["projections"]["volumes"]));
        Assert.Equal(["lake:/data"], List(stages["api"]["volumes"]));
        Assert.Equal(["lake:/data"], List(stages["rewards-stage"]["volumes"]));
    }

    [Fact]
    public void Compose_TheRewardsStage_RunsOnce_AndEveryStageThatReadsTheChainIsToldWhereItIs()
    {
        var stages = Services.Where(s => Map(s.Value).ContainsKey("command")).ToDictionary(s => (string)s.Key, s => Map(s.Value));
        // Epochs must not close twice: one replica (a second would only wait for the leader lock).
        Assert.Equal(1, Replicas(stages["rewards-stage"]));
        foreach (var (name, service) in stages)
        {
            var env = Map(service["environment"]);
            if (DeploymentFiles.ChainStages.Contains(name)) Assert.StartsWith("${CHAIN_RPC_URL:?", (string)env["PIPELINE_CHAIN"], StringComparison.Ordinal);
            if (name == DeploymentFiles.OperatorKeyStage) Assert.StartsWith("${CHAIN_OPERATOR_KEY:?", (string)env["PIPELINE_Chain__OperatorKey"], StringComparison.Ordinal);
            else Assert.False(env.ContainsKey("PIPELINE_Chain__OperatorKey"), $"{name} has no use for the operator's key");
        }
    }

    [Fact]
    public void Compose_NoServiceRunsAsRoot_AndPostgresIsHealthChecked()
    {
        Assert.All(Services.Values, s => Assert.False(Map(s).TryGetValue("user", out var user) && user is "root" or "0" or "0:0"));
        Assert.All(Services.Values, s => Assert.False(Map(s).ContainsKey("privileged")));
        var postgres = Map(Services["postgres"]);
        Assert.Contains("pg_isready", string.Join(" ", List(Map(postgres["healthcheck"])["test"])), StringComparison.Ordinal);
        Assert.Equal("${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}", Map(postgres["environment"])["POSTGRES_PASSWORD"]);
    }

    [Fact]
    public void Compose_WhereTheDockerComposePluginExists_DockerComposeConfigAcceptsIt()
    {
        // Here the plugin is absent (docker has no compose command): the structure tests above are the check, and this
        // one proves only that the absence is real, not a failure to run docker.
        if (!DockerComposeAvailable())
        {
            Assert.False(File.Exists("/usr/libexec/docker/cli-plugins/docker-compose") || File.Exists("/usr/local/lib/docker/cli-plugins/docker-compose"));
            return;
        }
        var start = new ProcessStartInfo("docker", ["compose", "-f", Path.Combine(DeploymentFiles.Folder, "compose.yaml"), "config", "--quiet"]) { RedirectStandardError = true };
        start.Environment["POSTGRES_PASSWORD"] = "test";
        using var process = Process.Start(start)!;
        var error = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, error);
    }

    private static bool DockerComposeAvailable()
    {
        try
        {
            using var process = Process.Start(new ProcessStartInfo("docker", ["compose", "version"]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
            process.WaitForExit();
            return process.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception)
        {
            return false;
        }
    }

    private static int Replicas(Dictionary<object, object> service) => int.Parse((string)Map(service["deploy"])["replicas"], System.Globalization.CultureInfo.InvariantCulture);

    private static Dictionary<object, object> ReadCompose()
    {
        using var reader = new StringReader(DeploymentFiles.Read("compose.yaml"));
        return new DeserializerBuilder().Build().Deserialize<Dictionary<object, object>>(new MergingParser(new Parser(reader)));
    }

    private static Dictionary<object, object> Map(object node) => Assert.IsType<Dictionary<object, object>>(node);
    private static List<object> List(object node) => Assert.IsType<List<object>>(node);
}
