namespace Pipeline.Simulator;

public enum TransportMode
{
    Http,
    Mqtt,
    Both,
}

/// <summary>The ways a simulated fleet misbehaves on request, each with the outcome the pipeline owes it.</summary>
[Flags]
public enum Misbehaviour
{
    None = 0,
    /// <summary>The same envelope sent twice: stored once, the second counted as a duplicate.</summary>
    Dup = 1,
    /// <summary>An envelope from earlier in the run sent again: a duplicate.</summary>
    Old = 2,
    /// <summary>A second, different payload with a seq already used: seq_conflict (equivocation).</summary>
    Seq = 4,
    /// <summary>A broken signature (bad_signature) or one by another key (signer_mismatch).</summary>
    Sig = 8,
    /// <summary>Readings from devices that never registered: unknown_device.</summary>
    Unregistered = 16,
    /// <summary>A signal outside its physical range: out_of_range.</summary>
    Range = 32,
    /// <summary>A device clock far behind (stale) or ahead (future).</summary>
    Skew = 64,
    /// <summary>A GPS fix hundreds of km from the last one seconds earlier: teleport.</summary>
    Teleport = 128,
    /// <summary>An envelope that is not JSON: malformed, refused at the edge.</summary>
    Malformed = 256,
    All = Dup | Old | Seq | Sig | Unregistered | Range | Skew | Teleport | Malformed,
}

/// <summary>What `depin simulate` runs: the fleet, its pace, where it sends and how it misbehaves.</summary>
public sealed record SimulatorOptions
{
    public int Vehicles { get; init; } = 20;
    public int Stations { get; init; } = 10;
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Readings per second over the whole fleet; empty: vehicles every 5 s while driving, stations every 60 s.</summary>
    public double? Rate { get; init; }

    public TransportMode Transport { get; init; } = TransportMode.Http;
    public Misbehaviour Misbehave { get; init; }

    /// <summary>The share of readings that misbehave when misbehaviour is on.</summary>
    public double MisbehaveRate { get; init; } = 0.05;

    public int Seed { get; init; } = 1;

    /// <summary>
    /// A fleet of its own beside the seeded ones (depin up's is "up"): its keys and state file differ from every
    /// seed's, so it never shares a device — or a device's sequence numbers — with a `depin simulate` run.
    /// </summary>
    public string? Name { get; init; }

    /// <summary>Names the state file, its lock and the ledger: "seed-1", or the fleet's name.</summary>
    public string StateName => Name ?? $"seed-{Seed}";

    /// <summary>What every key of this fleet derives from.</summary>
    public string KeyPrefix => Name is null ? $"depin-sim:{Seed}" : $"depin-sim:{Name}:{Seed}";

    /// <summary>Share of vehicles that are electric (state of charge, no engine signals).</summary>
    public double ElectricShare { get; init; } = 0.2;

    /// <summary>Recorded files to replay instead of (or beside) the synthetic fleet.</summary>
    public IReadOnlyList<string> Replay { get; init; } = [];

    /// <summary>Replay this many times faster than recorded.</summary>
    public double Speedup { get; init; } = 1;

    public string IngestUrl { get; init; } = "http://127.0.0.1:5081";
    public string ApiUrl { get; init; } = "http://127.0.0.1:5080";
    public string MqttHost { get; init; } = "127.0.0.1";
    public int MqttPort { get; init; } = 1883;

    /// <summary>Where keys and sequence numbers persist, so a restarted simulation continues the same devices.</summary>
    public string StateDirectory { get; init; } = Path.Combine(".data", "simulator");

    /// <summary>Show progress: live on a terminal, a line every few seconds otherwise (off for tests and the fleet of depin up).</summary>
    public bool ShowProgress { get; init; } = true;

    /// <summary>Keeps every reading sent in the run's ledger; off for a fleet that runs without end (depin up's).</summary>
    public bool KeepLedger { get; init; } = true;

    public static Misbehaviour ParseMisbehaviours(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return Misbehaviour.None;
        if (text.Trim().Equals("all", StringComparison.OrdinalIgnoreCase)) return Misbehaviour.All;
        var result = Misbehaviour.None;
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            result |= Enum.TryParse<Misbehaviour>(part, ignoreCase: true, out var one) && one != Misbehaviour.None
                ? one
                : throw new ArgumentException($"Unknown misbehaviour '{part}'; use all or any of dup, old, seq, sig, unregistered, range, skew, teleport, malformed.");
        }
        return result;
    }
}
