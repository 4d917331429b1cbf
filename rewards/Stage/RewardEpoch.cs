using Marten.Events.Aggregation;
using Pipeline.Core.Events;

namespace Pipeline.Rewards.Stage;

/// <summary>The rewards stage's read model: one document per closed epoch, kept inline from its stream.</summary>
public sealed class RewardEpoch
{
    /// <summary>The epoch's stream id, <see cref="StreamId"/>.</summary>
    public string Id { get; set; } = "";
    public long Epoch { get; set; }
    public DateTimeOffset Start { get; set; }
    public DateTimeOffset End { get; set; }
    public long ThroughSequence { get; set; }
    public string Status { get; set; } = RewardEpochStatus.Final;
    public DateTimeOffset ClosedAt { get; set; }
    public RewardsCalculated? Rewards { get; set; }
    public RootPublishRequested? Requested { get; set; }
    public RootPublished? Published { get; set; }

    public static string StreamId(long epoch) => $"rewards-epoch-{epoch}";
}

/// <summary>Where an epoch stands, as the API names it.</summary>
public static class RewardEpochStatus
{
    public const string Open = "open";
    public const string Final = "final";
    public const string Calculated = "calculated";
    public const string Publishing = "publishing";
    public const string Published = "published";
}

public sealed class RewardEpochProjection : SingleStreamProjection<RewardEpoch, string>
{
    public RewardEpoch Create(EpochClosed closed) => new()
    {
        Epoch = closed.Epoch,
        Start = closed.Start,
        End = closed.End,
        ThroughSequence = closed.ThroughSequence,
        ClosedAt = closed.ClosedAt,
        Status = RewardEpochStatus.Final,
    };

    public void Apply(RewardsCalculated calculated, RewardEpoch epoch)
    {
        epoch.Rewards = calculated;
        epoch.Status = RewardEpochStatus.Calculated;
    }

    public void Apply(RootPublishRequested requested, RewardEpoch epoch)
    {
        epoch.Requested = requested;
        epoch.Status = RewardEpochStatus.Publishing;
    }

    public void Apply(RootPublished published, RewardEpoch epoch)
    {
        epoch.Published = published;
        epoch.Status = RewardEpochStatus.Published;
    }
}
