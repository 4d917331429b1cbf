using Pipeline.Core.Envelope;
using Pipeline.Ingest.Gateway;

namespace Pipeline.Tests.Unit.Ingest;

public sealed class BacklogGateTests
{
    [Fact]
    public void BeforeTheOffsetsWereRead_EverythingIsRefusedUnavailable()
    {
        var gate = Gate(retention: 1_000);
        Assert.Equal(ReasonCode.Unavailable, gate.Check(inFlightBytes: 0, requestBytes: 1)!.Code);
        gate.MarkKnown();
        Assert.Null(gate.Check(0, 1));
    }

    [Fact]
    public void AcknowledgedRecords_CountUntilTheProcessorsPassThem_AndInFlightBytesCountAsIfAllInTheFullestPartition()
    {
        var gate = Known(retention: 1_000); // limit 750
        for (var offset = 0; offset < 10; offset++) gate.Delivered(partition: 1, offset, bytes: 50);
        gate.Delivered(partition: 0, offset: 0, bytes: 50);
        Assert.Null(gate.Check(inFlightBytes: 250, requestBytes: 250));
        var refusal = gate.Check(inFlightBytes: 251, requestBytes: 251);
        Assert.Equal(ReasonCode.Unavailable, refusal!.Code);
        Assert.Contains("partition 1", refusal.Detail);

        gate.Refresh(partition: 1, committed: 10, low: 0, high: 10);
        Assert.Equal([(0, 50L), (1, 0L)], gate.Backlog());
    }

    [Fact]
    public void Refresh_ForgetsOnlyWholeChunksBeforeTheProcessorsOffset_NeverUndercounting()
    {
        var gate = Known(retention: 1_000_000);
        for (var offset = 0; offset < 200; offset++) gate.Delivered(0, offset, 10);
        gate.Refresh(0, committed: 150, low: 0, high: 200);
        // Chunks of 64: 0–63 and 64–127 are done; 128–191 straddles the offset and stays whole, with 192–199.
        Assert.Equal(720, Assert.Single(gate.Backlog()).Bytes);
        Assert.True(Assert.Single(gate.Backlog()).Bytes >= 50 * 10);
    }

    [Fact]
    public void RecordsOthersWrote_CountAtTheAverageSizeOfThisEdgesOwn()
    {
        var gate = Known(retention: 1_000_000);
        // Before any of its own: a kibibyte each.
        gate.Refresh(0, committed: -1, low: 20, high: 120);
        Assert.Equal(100 * 1024, Assert.Single(gate.Backlog()).Bytes);

        for (var offset = 120; offset < 130; offset++) gate.Delivered(0, offset, 300);
        gate.Refresh(0, committed: 100, low: 20, high: 130);
        // 10 of its own (3,000 bytes) and 20 by others at its average of 300.
        Assert.Equal(3_000 + 20 * 300, Assert.Single(gate.Backlog()).Bytes);
    }

    [Fact]
    public void RequestLargerThanTheLimit_IsTooLargeForGood_AndNoRetentionMeansNoLimit()
    {
        Assert.Equal(ReasonCode.TooLarge, Known(retention: 1_000).Check(inFlightBytes: 800, requestBytes: 800)!.Code);
        var unlimited = Known(retention: null);
        unlimited.Delivered(0, 0, 1_000_000_000);
        Assert.Null(unlimited.Check(long.MaxValue / 4, 1_000_000));
    }

    private static BacklogGate Gate(long? retention)
    {
        var gate = new BacklogGate();
        gate.SetRetention(retention, headroom: 0.25);
        return gate;
    }

    private static BacklogGate Known(long? retention)
    {
        var gate = Gate(retention);
        gate.MarkKnown();
        return gate;
    }
}
