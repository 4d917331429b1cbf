using Pipeline.Tests.Support;

namespace Pipeline.Tests.Unit.Deployment;

/// <summary>The files under infra/deploy, and what every process of the pipeline must be told alike.</summary>
public static class DeploymentFiles
{
    public static string Folder => Path.Combine(RepositoryTools.Root, "infra", "deploy");

    public static string Read(params string[] path) => File.ReadAllText(Path.Combine([Folder, .. path]));

    /// <summary>The stages `depin` runs alone (cli/Commands/StageCommands.cs) and the port each answers /health on.</summary>
    public static readonly IReadOnlyDictionary<string, int> StageHealthPorts = new Dictionary<string, int>
    {
        ["ingest"] = 5081, ["streams"] = 5082, ["projections"] = 5082, ["api"] = 5080, ["rewards-stage"] = 5082,
    };

    public const string Partitions = "12";

    /// <summary>The stages that read the chain: they must be told where it is, or they would start a local anvil the image does not carry.</summary>
    public static readonly IReadOnlyList<string> ChainStages = ["api", "rewards-stage"];

    /// <summary>The one stage that holds the operator's key: it deploys the contracts and publishes roots (the API reads without it).</summary>
    public const string OperatorKeyStage = "rewards-stage";
}
