using System.CommandLine;

namespace Pipeline.Cli.Hosting;

/// <summary>The options every command that runs pipeline stages shares; each maps to a configuration key.</summary>
public sealed class StackArguments
{
    private readonly List<(Option Option, string Key)> _options =
    [
        (new Option<string>("--data") { Description = "State folder: PostgreSQL cluster, lake, keys (PIPELINE_DATA; default .data)." }, "Data:Directory"),
        (new Option<string>("--postgres") { Description = "Connection string of a PostgreSQL server to use instead of the local cluster (PIPELINE_POSTGRES)." }, "Postgres:ConnectionString"),
        (new Option<string>("--kafka") { Description = "Bootstrap servers of a Kafka cluster to use instead of the embedded broker (PIPELINE_KAFKA)." }, "Kafka:BootstrapServers"),
        (new Option<int>("--partitions") { Description = "Partitions of the pipeline's topics (PIPELINE_PARTITIONS; default 6)." }, "Kafka:Partitions"),
        (new Option<string>("--listen") { Description = "Address the HTTP and MQTT endpoints bind (PIPELINE_LISTEN; default 127.0.0.1)." }, "Endpoints:ListenAddress"),
        (new Option<int>("--api-port") { Description = "Registry and marketplace API port (PIPELINE_API_PORT; default 5080)." }, "Endpoints:ApiPort"),
        (new Option<int>("--ingest-port") { Description = "Ingest HTTP port (PIPELINE_INGEST_PORT; default 5081)." }, "Endpoints:IngestPort"),
        (new Option<int>("--mqtt-port") { Description = "MQTT port (PIPELINE_MQTT_PORT; default 1883)." }, "Endpoints:MqttPort"),
        (new Option<int>("--chain-port") { Description = "Port of the local anvil chain the rewards stage publishes to (PIPELINE_CHAIN_PORT; default 8545); PIPELINE_CHAIN names a running chain instead." }, "Chain:Port"),
        (new Option<int>("--status-port") { Description = "Health and metrics port of a process with neither the API nor ingest, such as depin streams (PIPELINE_STATUS_PORT; default 5082; 0 picks a free one)." }, "Endpoints:StatusPort"),
    ];

    public void AddTo(Command command)
    {
        foreach (var (option, _) in _options) command.Options.Add(option);
    }

    /// <summary>The options given on this command line, as configuration keys and values.</summary>
    public IEnumerable<KeyValuePair<string, string?>> Values(ParseResult result)
    {
        foreach (var (option, key) in _options)
        {
            var found = result.GetResult(option);
            if (found is null || found.Implicit) continue;
            yield return new(key, found.Tokens.Count > 0 ? found.Tokens[0].Value : null);
        }
    }
}
