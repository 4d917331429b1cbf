using System.Collections.Concurrent;
using System.Text.Json;
using Spectre.Console;

namespace Pipeline.Cli.Chaos;

/// <summary>One check of the end state: what it compares, whether it held, and when not, what differed.</summary>
public sealed record ChaosCheck(string Name, bool Held, string Detail);

/// <summary>What a chaos run did to the pipeline, and what it found at the end; printed as a table and written as JSON.</summary>
public sealed class ChaosReport
{
    private int _postgresRestarts;
    private int _brokerOutages;

    public TimeSpan Duration { get; set; }
    public int Seed { get; set; }

    /// <summary>Signals sent, by "SIGKILL streams-1" and so on.</summary>
    public ConcurrentDictionary<string, int> Kills { get; } = new();

    public int TotalKills => Kills.Values.Sum();
    public int PostgresRestarts => _postgresRestarts;
    public int BrokerOutages => _brokerOutages;

    /// <summary>Stage exits nobody asked for (e.g. a start while PostgreSQL was down), by stage; each was started again.</summary>
    public Dictionary<string, int> UnexpectedExits { get; set; } = [];

    public long ReadingsSent { get; set; }
    public long ReadingsAcknowledged { get; set; }

    /// <summary>Acknowledged readings the pipeline owes an event for: each one looked up in the store.</summary>
    public long ReadingsChecked { get; set; }
    public long Lost { get; set; }
    public long Duplicated { get; set; }
    public long DeadLetters { get; set; }
    public long LakeRows { get; set; }
    public long RebuiltRows { get; set; }
    public int EpochsClosed { get; set; }
    public int RootsPublished { get; set; }
    public List<ChaosCheck> Checks { get; } = [];
    public bool Passed => Checks.Count > 0 && Checks.All(c => c.Held);

    public void AddKill(int signal, string stage) => Kills.AddOrUpdate($"{Signals.Name(signal)} {stage}", 1, (_, n) => n + 1);
    public void AddPostgresRestart() => Interlocked.Increment(ref _postgresRestarts);
    public void AddBrokerOutage() => Interlocked.Increment(ref _brokerOutages);

    public void WriteJson(string path) => File.WriteAllText(path, JsonSerializer.Serialize(this, new JsonSerializerOptions(JsonSerializerOptions.Web) { WriteIndented = true }));

    public Table Table()
    {
        var table = new Table().Border(TableBorder.Rounded).Title("[bold]depin chaos[/]").HideHeaders().AddColumn("").AddColumn(new TableColumn("").RightAligned());
        table.AddRow("Duration (chaos)", $"{Duration:mm\\:ss} (seed {Seed})");
        table.AddRow("Kills", $"{TotalKills:N0}");
        foreach (var (what, count) in Kills.OrderBy(k => k.Key, StringComparer.Ordinal)) table.AddRow($"  {what}", $"{count:N0}");
        table.AddRow("PostgreSQL restarts", $"{PostgresRestarts:N0}");
        table.AddRow("Broker outages", $"{BrokerOutages:N0}");
        foreach (var (stage, count) in UnexpectedExits.Where(e => e.Value > 0).OrderBy(e => e.Key, StringComparer.Ordinal))
            table.AddRow($"  exits on its own: {stage} (started again)", $"{count:N0}");
        table.AddRow("Readings sent / acknowledged", $"{ReadingsSent:N0} / {ReadingsAcknowledged:N0}");
        table.AddRow("Readings checked against the store", $"{ReadingsChecked:N0}");
        table.AddRow("Lost", Count(Lost));
        table.AddRow("Duplicated", Count(Duplicated));
        table.AddRow("Dead letters", $"{DeadLetters:N0}");
        table.AddRow("Lake rows / rebuild rows", $"{LakeRows:N0} / {RebuiltRows:N0}");
        table.AddRow("Reward epochs closed / roots published", $"{EpochsClosed:N0} / {RootsPublished:N0}");
        foreach (var check in Checks)
            table.AddRow(new Text(check.Name), check.Held ? new Markup("[green]held[/]") : new Markup($"[red]FAILED[/] {Markup.Escape(check.Detail)}"));
        return table;
    }

    private static string Count(long value) => value == 0 ? "[green]0[/]" : $"[red]{value:N0}[/]";
}
