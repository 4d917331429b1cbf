using Confluent.Kafka;
using Pipeline.Streams.Processing;

namespace Pipeline.Tests.Unit.Streams;

/// <summary>Issue 16: where a partition stopped at an offset the broker no longer has goes on, and what retention took.</summary>
public sealed class OutOfRangeOffsetTests
{
    private static readonly WatermarkOffsets Log = new(new Offset(100), new Offset(250));

    [Theory]
    [InlineData(0, 100)]
    [InlineData(40, 60)]
    [InlineData(99, 1)]
    public void BelowTheLogStart_TheMessagesUpToItAreLost_AndThePartitionGoesOnFromIt(long next, long lost)
    {
        Assert.Equal((lost, new Offset(100)), ReadingProcessor.Resume(next, Log));
    }

    [Fact]
    public void BeyondTheLogEnd_NothingCountsAsLost_AndThePartitionIsReadFromItsStart()
    {
        Assert.Equal((0L, new Offset(100)), ReadingProcessor.Resume(400, Log));
    }

    [Theory]
    [InlineData(100)]
    [InlineData(180)]
    [InlineData(250)]
    public void InsideTheLog_NothingIsLost_AndThePartitionGoesOnWhereItStopped(long next)
    {
        Assert.Equal((0L, new Offset(next)), ReadingProcessor.Resume(next, Log));
    }

    [Fact]
    public void ALogicalOffset_AFailedLookup_IsLookedUpAgain_NothingLost()
    {
        Assert.Equal((0L, Offset.Beginning), ReadingProcessor.Resume(Offset.Beginning.Value, Log));
    }
}
