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
        ["ingest"] = 5081, ["streams"] = 5082, ["projections"] = 5082, ["api"] = 5080,
    };

    public const string Partitions = "12";
}
