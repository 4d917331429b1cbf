using Pipeline.Infra.Development;
using Pipeline.Infra.Hosting;
using Pipeline.Infra.Kafka;
using Pipeline.Infra.Postgres;

namespace Pipeline.Cli.Hosting;

/// <summary>
/// Configuration from, in rising precedence: environment variables PIPELINE_&lt;Section&gt;__&lt;Key&gt;, the short
/// variables the README names (PIPELINE_POSTGRES, PIPELINE_KAFKA, PIPELINE_DATA, PIPELINE_API_PORT, …), and
/// command-line options.
/// </summary>
public static class PipelineConfiguration
{
    private static readonly Dictionary<string, string> Shortcuts = new()
    {
        ["PIPELINE_POSTGRES"] = $"{PostgresOptions.Section}:ConnectionString",
        ["PIPELINE_POSTGRES_PORT"] = $"{PostgresOptions.Section}:Port",
        ["PIPELINE_KAFKA"] = $"{KafkaOptions.Section}:BootstrapServers",
        ["PIPELINE_PARTITIONS"] = $"{KafkaOptions.Section}:Partitions",
        ["PIPELINE_DATA"] = $"{DataOptions.Section}:Directory",
        ["PIPELINE_LISTEN"] = $"{EndpointsOptions.Section}:ListenAddress",
        ["PIPELINE_API_PORT"] = $"{EndpointsOptions.Section}:ApiPort",
        ["PIPELINE_INGEST_PORT"] = $"{EndpointsOptions.Section}:IngestPort",
        ["PIPELINE_MQTT_PORT"] = $"{EndpointsOptions.Section}:MqttPort",
        ["PIPELINE_STATUS_PORT"] = $"{EndpointsOptions.Section}:StatusPort",
        ["PIPELINE_CHAIN"] = $"{Infra.Development.DevServers.ChainSection}:RpcUrl",
        ["PIPELINE_CHAIN_PORT"] = $"{Infra.Development.DevServers.ChainSection}:Port",
    };

    public static IConfigurationRoot Build(IEnumerable<KeyValuePair<string, string?>> commandLine)
    {
        var fromShortcuts = Shortcuts
            .Select(s => (Key: s.Value, Value: Environment.GetEnvironmentVariable(s.Key)))
            .Where(s => !string.IsNullOrEmpty(s.Value))
            .Select(s => new KeyValuePair<string, string?>(s.Key, s.Value));
        return new ConfigurationBuilder()
            .AddEnvironmentVariables("PIPELINE_")
            .AddInMemoryCollection(fromShortcuts)
            .AddInMemoryCollection(commandLine)
            .Build();
    }

    /// <summary>The data folder, as configured, in full.</summary>
    public static string DataDirectory(IConfiguration configuration) =>
        (configuration.GetSection(DataOptions.Section).Get<DataOptions>() ?? new()).FullPath;

    /// <summary>What the local dev servers start from: the data folder, and the Postgres and Kafka sections (a server named there is used, not started).</summary>
    public static DevServerOptions DevServers(IConfiguration configuration) => new()
    {
        DataDirectory = DataDirectory(configuration),
        Postgres = configuration.GetSection(PostgresOptions.Section).Get<PostgresOptions>() ?? new(),
        Kafka = configuration.GetSection(KafkaOptions.Section).Get<KafkaOptions>() ?? new(),
        ChainRpcUrl = configuration[$"{Infra.Development.DevServers.ChainSection}:RpcUrl"],
        ChainPort = configuration.GetValue($"{Infra.Development.DevServers.ChainSection}:Port", 8545),
    };

    /// <summary>The configuration with what the dev servers filled in (where PostgreSQL and Kafka are) on top.</summary>
    public static IConfiguration With(IConfiguration configuration, DevServers servers) =>
        new ConfigurationBuilder().AddConfiguration(configuration).AddInMemoryCollection(servers.Configuration).Build();

    public static EndpointsOptions Endpoints(IConfiguration configuration) =>
        configuration.GetSection(EndpointsOptions.Section).Get<EndpointsOptions>() ?? new();
}
