namespace Pipeline.Infra.Hosting;

/// <summary>Where the host listens. Bound from the "Endpoints" section.</summary>
public sealed class EndpointsOptions
{
    public const string Section = "Endpoints";

    public string ListenAddress { get; set; } = "127.0.0.1";
    public int ApiPort { get; set; } = 5080;
    public int IngestPort { get; set; } = 5081;
    public int MqttPort { get; set; } = 1883;

    /// <summary>/health and /metrics of a process that runs only background stages (depin streams); 0 picks a free port.</summary>
    public int StatusPort { get; set; } = 5082;

    public string MqttAddress => $"{ListenAddress}:{MqttPort}";
    public string ApiUrl => $"http://{ListenAddress}:{ApiPort}";
    public string IngestUrl => $"http://{ListenAddress}:{IngestPort}";
}
