namespace Pipeline.Projections.Lake;

/// <summary>The lake's settings, bound from the "Lake" section.</summary>
public sealed class LakeOptions
{
    public const string Section = "Lake";

    /// <summary>The lake's folder; empty: "lake" in the data folder.</summary>
    public string? Directory { get; set; }

    /// <summary>Decimal places kept of vehicle coordinates in buyer-facing datasets: 2 ≈ 1.1 km, 3 ≈ 110 m.</summary>
    public int LocationDecimals { get; set; } = 2;

    /// <summary>How often the projector looks for new events.</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Most events projected in one round.</summary>
    public int MaxEventsPerRound { get; set; } = 50_000;

    /// <summary>Partitions with this many files or more, each under <see cref="CompactBelowRows"/>, are merged into one.</summary>
    public int CompactAtFiles { get; set; } = 8;
    public int CompactBelowRows { get; set; } = 200_000;
    public TimeSpan CompactionInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Length of a reward epoch, the unit of device_quality.</summary>
    public TimeSpan EpochLength { get; set; } = TimeSpan.FromHours(1);
}
