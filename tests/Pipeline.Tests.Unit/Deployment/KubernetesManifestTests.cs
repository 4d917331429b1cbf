using k8s;
using k8s.Models;

namespace Pipeline.Tests.Unit.Deployment;

/// <summary>
/// The Kubernetes manifests, read through the Kubernetes client's own model (KubernetesYaml: an unknown kind or field
/// name fails to load) and checked: probes on /health, resources, non-root pods, a disruption budget per workload, the
/// processors' autoscaler on consumer lag.
/// </summary>
public sealed class KubernetesManifestTests
{
    private static readonly List<object> Objects = Directory.GetFiles(Path.Combine(DeploymentFiles.Folder, "kubernetes"), "*.yaml").Order()
        .SelectMany(file => KubernetesYaml.LoadAllFromString(File.ReadAllText(file))).ToList();

    private static IEnumerable<(string Name, V1PodTemplateSpec Pod)> Workloads() =>
        Objects.OfType<V1Deployment>().Select(d => (d.Metadata.Name, d.Spec.Template))
            .Concat(Objects.OfType<V1StatefulSet>().Select(s => (s.Metadata.Name, s.Spec.Template)));

    [Fact]
    public void Manifests_HoldEveryStageAndTheServersTheyNeed_AllInTheNamespace()
    {
        Assert.Equal(["api", "ingest", "projections", "rewards-stage", "streams"], Objects.OfType<V1Deployment>().Select(d => d.Metadata.Name).Order());
        Assert.Equal(["kafka", "postgres"], Objects.OfType<V1StatefulSet>().Select(s => s.Metadata.Name).Order());
        Assert.All(Objects.OfType<IMetadata<V1ObjectMeta>>().Where(o => o is not V1Namespace), o => Assert.Equal("depin", o.Metadata.NamespaceProperty));
    }

    [Fact]
    public void EveryStage_IsProbedOnHealthAtItsPort_WithResources_AsANonRootUser()
    {
        foreach (var deployment in Objects.OfType<V1Deployment>())
        {
            var name = deployment.Metadata.Name;
            var pod = deployment.Spec.Template.Spec;
            var container = Assert.Single(pod.Containers);
            Assert.Equal([name], container.Args);
            Assert.True(pod.SecurityContext.RunAsNonRoot, name);
            Assert.NotEqual(0, pod.SecurityContext.RunAsUser);
            var port = Assert.Single(container.Ports, p => p.ContainerPort == DeploymentFiles.StageHealthPorts[name]);
            foreach (var probe in new[] { container.ReadinessProbe, container.LivenessProbe })
            {
                Assert.Equal("/health", probe.HttpGet.Path);
                Assert.Equal(port.Name, probe.HttpGet.Port.Value);
            }
            Assert.True(container.LivenessProbe.FailureThreshold * container.LivenessProbe.PeriodSeconds >= 60, $"{name}: a short broker or database outage must not restart it");
            foreach (var resource in new[] { "cpu", "memory" })
            {
                Assert.True(container.Resources.Requests.ContainsKey(resource), $"{name} requests {resource}");
                Assert.True(container.Resources.Limits.ContainsKey(resource), $"{name} limits {resource}");
                Assert.True(container.Resources.Requests[resource].ToDecimal() <= container.Resources.Limits[resource].ToDecimal());
            }
            Assert.Equal("depin-settings", Assert.Single(container.EnvFrom).ConfigMapRef.Name);
            // Every stage but the edge records into PostgreSQL, whose connection string comes from the secret.
            var postgres = container.Env?.SingleOrDefault(e => e.Name == "PIPELINE_POSTGRES");
            if (name == "ingest") Assert.Null(postgres);
            else Assert.Equal("depin-postgres", postgres!.ValueFrom.SecretKeyRef.Name);
        }
    }

    [Fact]
    public void EveryWorkload_HasADisruptionBudgetSelectingItsPods()
    {
        var budgets = Objects.OfType<V1PodDisruptionBudget>().ToList();
        foreach (var (name, pod) in Workloads())
        {
            var budget = Assert.Single(budgets, b => b.Spec.Selector.MatchLabels.All(l => pod.Metadata.Labels.TryGetValue(l.Key, out var v) && v == l.Value));
            Assert.True(budget.Spec.MinAvailable is not null || budget.Spec.MaxUnavailable is not null, name);
        }
        // Kafka loses at most one broker at a time, so two replicas stay in sync (min.insync.replicas 2).
        Assert.Equal("1", budgets.Single(b => b.Metadata.Name == "kafka").Spec.MaxUnavailable.Value);
    }

    [Fact]
    public void Kafka_IsThreeKRaftNodes_WithReplicationThreeAndMinInsyncTwo()
    {
        var kafka = Objects.OfType<V1StatefulSet>().Single(s => s.Metadata.Name == "kafka");
        Assert.Equal(3, kafka.Spec.Replicas);
        var env = Assert.Single(kafka.Spec.Template.Spec.Containers).Env.ToDictionary(e => e.Name, e => e.Value);
        Assert.Equal("broker,controller", env["KAFKA_PROCESS_ROLES"]);
        Assert.Equal(3, env["KAFKA_CONTROLLER_QUORUM_VOTERS"].Split(',').Length);
        Assert.Equal("3", env["KAFKA_DEFAULT_REPLICATION_FACTOR"]);
        Assert.Equal("2", env["KAFKA_MIN_INSYNC_REPLICAS"]);
        Assert.Equal(DeploymentFiles.Partitions, env["KAFKA_NUM_PARTITIONS"]);
        var settings = Objects.OfType<V1ConfigMap>().Single(c => c.Metadata.Name == "depin-settings").Data;
        Assert.Equal(DeploymentFiles.Partitions, settings["PIPELINE_PARTITIONS"]);
        Assert.Equal(3, settings["PIPELINE_KAFKA"].Split(',').Length);
    }

    [Fact]
    public void Processors_ScaleOnConsumerLag_NeverBeyondThePartitions_AndTheLeaderElectedProjectorHasAStandby()
    {
        var streams = Objects.OfType<V2HorizontalPodAutoscaler>().Single(h => h.Spec.ScaleTargetRef.Name == "streams");
        var metric = Assert.Single(streams.Spec.Metrics);
        Assert.Equal("External", metric.Type);
        Assert.Equal("depin_streams_lag", metric.External.Metric.Name);
        Assert.Equal("AverageValue", metric.External.Target.Type);
        Assert.Equal(int.Parse(DeploymentFiles.Partitions, System.Globalization.CultureInfo.InvariantCulture), streams.Spec.MaxReplicas);
        // Nothing scales the projector or the API: one projector leads and one waits; export jobs live in the API's memory.
        Assert.DoesNotContain(Objects.OfType<V2HorizontalPodAutoscaler>(), h => h.Spec.ScaleTargetRef.Name is "projections" or "api");
        Assert.Equal(2, Objects.OfType<V1Deployment>().Single(d => d.Metadata.Name == "projections").Spec.Replicas);
        Assert.Equal(1, Objects.OfType<V1Deployment>().Single(d => d.Metadata.Name == "api").Spec.Replicas);
        var lake = Objects.OfType<V1PersistentVolumeClaim>().Single(c => c.Metadata.Name == "lake");
        Assert.Equal(["ReadWriteMany"], lake.Spec.AccessModes);
    }

    [Fact]
    public void RewardsStage_RunsOnceOnTheLake_AndTheStagesThatReadTheChainAreToldWhereItIsAndTheOperatorsKey()
    {
        var rewards = Objects.OfType<V1Deployment>().Single(d => d.Metadata.Name == "rewards-stage");
        // Epochs must not close twice: one replica, replaced rather than rolled (the leader lock makes a second wait anyway).
        Assert.Equal(1, rewards.Spec.Replicas);
        Assert.Equal("Recreate", rewards.Spec.Strategy.Type);
        Assert.DoesNotContain(Objects.OfType<V2HorizontalPodAutoscaler>(), h => h.Spec.ScaleTargetRef.Name == "rewards-stage");
        Assert.Equal("lake", Assert.Single(rewards.Spec.Template.Spec.Volumes).PersistentVolumeClaim.ClaimName);
        Assert.Equal("/data", Assert.Single(Assert.Single(rewards.Spec.Template.Spec.Containers).VolumeMounts).MountPath);

        var settings = Objects.OfType<V1ConfigMap>().Single(c => c.Metadata.Name == "depin-settings").Data;
        Assert.True(Uri.TryCreate(settings["PIPELINE_CHAIN"], UriKind.Absolute, out var chain) && chain.Scheme is "http" or "https");
        foreach (var deployment in Objects.OfType<V1Deployment>())
        {
            var key = Assert.Single(deployment.Spec.Template.Spec.Containers).Env?.SingleOrDefault(e => e.Name == "PIPELINE_Chain__OperatorKey");
            if (deployment.Metadata.Name == DeploymentFiles.OperatorKeyStage) Assert.Equal("depin-chain", key!.ValueFrom.SecretKeyRef.Name);
            else Assert.Null(key);
        }
        Assert.Single(Objects.OfType<V1Secret>(), s => s.Metadata.Name == "depin-chain");
    }
}
