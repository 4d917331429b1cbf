using Microsoft.Extensions.Options;

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

    /// <summary>
    /// Partitions with this many files or more, each under <see cref="CompactBelowRows"/>, are merged into one (into a few
    /// when there are more than <see cref="CompactMaxFiles"/>).
    /// </summary>
    public int CompactAtFiles { get; set; } = 8;
    public int CompactBelowRows { get; set; } = 200_000;

    /// <summary>
    /// Most files one merge reads; a day with more small files is merged in groups of at most this many. A merge holds a
    /// reader per input (about 1.6 MB of native memory each, however few rows its file has), so this bounds compaction's
    /// memory whatever the number of rounds since the last compaction or the size of a rebuild (issue 16).
    /// </summary>
    public int CompactMaxFiles { get; set; } = 16;
    public TimeSpan CompactionInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long files replaced by compaction are kept, so the lake can still be read as it was at an older checkpoint
    /// (the marketplace's as_of); at least 30 s, for queries that listed them a moment before.
    /// </summary>
    public TimeSpan SnapshotRetention { get; set; } = TimeSpan.FromDays(7);

    /// <summary>Length of a reward epoch, the unit of device_quality.</summary>
    public TimeSpan EpochLength { get; set; } = TimeSpan.FromHours(1);

    /// <summary>The lake's folder as a full path without a trailing separator, so siblings can be named after it.</summary>
    public string ResolveDirectory(string dataDirectory) =>
        Path.TrimEndingDirectorySeparator(Path.GetFullPath(string.IsNullOrWhiteSpace(Directory) ? Path.Combine(dataDirectory, "lake") : Directory));

    /// <summary>What is wrong with these settings; empty when the lake can run with them.</summary>
    public IReadOnlyList<string> Errors()
    {
        var errors = new List<string>();
        if (LocationDecimals is < 0 or > 6) errors.Add("Lake:LocationDecimals must be 0–6.");
        if (PollInterval <= TimeSpan.Zero) errors.Add("Lake:PollInterval must be positive.");
        if (EpochLength < TimeSpan.FromMinutes(1)) errors.Add("Lake:EpochLength must be at least a minute.");
        if (SnapshotRetention < TimeSpan.FromSeconds(30)) errors.Add("Lake:SnapshotRetention must be at least 30 s.");
        if (MaxEventsPerRound <= 0) errors.Add("Lake:MaxEventsPerRound must be positive.");
        // Compaction merges only files under CompactBelowRows. A round's file must always qualify, or one could sit
        // between small files and a merged file's sequence range would overlap it.
        if (MaxEventsPerRound >= CompactBelowRows) errors.Add("Lake:MaxEventsPerRound must be below Lake:CompactBelowRows.");
        // Merging a single file would write it over itself and then delete it as a replaced input.
        if (CompactAtFiles < 2) errors.Add("Lake:CompactAtFiles must be at least 2.");
        if (CompactMaxFiles < 2) errors.Add("Lake:CompactMaxFiles must be at least 2.");
        return errors;
    }
}

/// <summary>Checks <see cref="LakeOptions"/> at start with <see cref="LakeOptions.Errors"/>.</summary>
public sealed class LakeOptionsValidation : IValidateOptions<LakeOptions>
{
    public ValidateOptionsResult Validate(string? name, LakeOptions options) =>
        options.Errors() is { Count: > 0 } errors ? ValidateOptionsResult.Fail(errors) : ValidateOptionsResult.Success;
}
