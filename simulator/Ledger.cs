using System.Collections.Concurrent;
using System.Text.Json;

namespace Pipeline.Simulator;

/// <summary>
/// One reading the simulator sent (or tried to), and what the pipeline owes it: Expected is "accepted", "duplicate",
/// or the reason code the pipeline must give.
/// </summary>
public sealed record LedgerEntry(string Device, long Seq, string? ReadingId, string Transport, string Expected, string? Misbehaviour)
{
    /// <summary>What the edge answered: "accepted", "duplicate" (already acknowledged), "refused:&lt;reason&gt;", or empty while unanswered.</summary>
    public string Edge { get; set; } = "";
}

/// <summary>
/// Everything sent in a run, for the summary and for tests that check the pipeline's verdict on each reading. One that
/// does not keep (depin up's demo fleet, which drives until the host stops) holds nothing: it would otherwise grow by
/// every reading for as long as the fleet runs.
/// </summary>
public sealed class Ledger(bool keep = true)
{
    private readonly ConcurrentQueue<LedgerEntry> _entries = new();

    public void Add(LedgerEntry entry)
    {
        if (keep) _entries.Enqueue(entry);
    }

    public IReadOnlyList<LedgerEntry> Entries => [.. _entries];

    /// <summary>Writes every entry as one JSON object per line, for checking the pipeline's verdicts afterwards.</summary>
    public void WriteTo(string path)
    {
        using var writer = new StreamWriter(path);
        foreach (var entry in _entries) writer.WriteLine(JsonSerializer.Serialize(entry, JsonSerializerOptions.Web));
    }
}
