using System.Diagnostics.Metrics;

namespace Pipeline.Rewards.Payments;

/// <summary>What the payment follower counts: payments by outcome, blocks reorganised away, the last block read.</summary>
public sealed class PaymentsMetrics
{
    public const string MeterName = "Pipeline.Rewards.Payments";

    private readonly Counter<long> _payments;
    private readonly Counter<long> _reorganised;
    private long _followedBlock = -1;

    public PaymentsMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(MeterName);
        _payments = meter.CreateCounter<long>("pipeline.payments.followed", "{payment}", "PaymentReceived logs handled, by status (credited, unattributed) and reason.");
        _reorganised = meter.CreateCounter<long>("pipeline.payments.reorganised_blocks", "{block}", "Blocks the follower stepped back over after a reorganisation.");
        meter.CreateObservableGauge("pipeline.payments.followed_block", () => Interlocked.Read(ref _followedBlock), "{block}", "The last block the follower read (confirmed).");
    }

    public void Followed(ChainPayment payment) => _payments.Add(1,
        new KeyValuePair<string, object?>("status", payment.Status), new KeyValuePair<string, object?>("reason", payment.Reason ?? ""));

    public void Reorganised(int blocks) => _reorganised.Add(blocks);

    public void Read(long block) => Interlocked.Exchange(ref _followedBlock, block);
}
