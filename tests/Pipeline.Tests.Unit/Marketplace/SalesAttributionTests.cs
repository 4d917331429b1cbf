using Pipeline.Marketplace.Attribution;

namespace Pipeline.Tests.Unit.Marketplace;

public sealed class SalesAttributionTests
{
    private const string A = "0x00000000000000000000000000000000000000aa";
    private const string B = "0x00000000000000000000000000000000000000bb";
    private const string C = "0x00000000000000000000000000000000000000cc";

    [Fact]
    public void Allocate_RowsDeliveredEqualTheShares_GivesEachDeviceItsOwnRows()
    {
        var allocations = SalesAttribution.Allocate([new(B, 7, 120), new(A, 7, 30), new(A, 8, 50)], 200, 1_000);

        Assert.Equal([(A, 7L, 30L, 150L), (A, 8L, 50L, 250L), (B, 7L, 120L, 600L)], allocations.Select(a => (a.Device, a.Epoch, a.Rows, a.Credits)));
    }

    [Fact]
    public void Allocate_UnevenQuotas_GivesLeftoverUnitsToTheLargestRemainders()
    {
        // 7 × 5/10 = 3.5, 7 × 3/10 = 2.1, 7 × 2/10 = 1.4: floors 3 + 2 + 1 = 6, the last unit to the .5.
        var allocations = SalesAttribution.Allocate([new(A, 1, 5), new(B, 1, 3), new(C, 1, 2)], 0, 7);

        Assert.Equal([4L, 2L, 1L], allocations.Select(a => a.Credits));
    }

    [Fact]
    public void Allocate_EqualRemainders_FavourTheLargerShareThenTheLowerAddress()
    {
        // An aggregate sold as one row, read from three devices' rows: 1 row and 100 credits to split three ways.
        var equal = SalesAttribution.Allocate([new(C, 1, 10), new(B, 1, 10), new(A, 1, 10)], 1, 100);
        Assert.Equal([(A, 1L, 34L), (B, 0L, 33L), (C, 0L, 33L)], equal.Select(a => (a.Device, a.Rows, a.Credits)));

        // 2 credits over shares 3, 1, 1, 1 (sum 6): quotas 1, ⅓, ⅓, ⅓. One unit left over, remainders tie at ⅓ three ways.
        var larger = SalesAttribution.Allocate([new(A, 1, 1), new(B, 1, 3), new(C, 1, 1), new("0x00000000000000000000000000000000000000dd", 1, 1)], 0, 2);
        Assert.Equal([1L, 1L, 0L, 0L], larger.Select(a => a.Credits));
    }

    [Fact]
    public void Allocate_RandomFleets_AlwaysAddsUpAndStaysWithinOneUnitOfTheExactQuota()
    {
        var random = new Random(2026);
        for (var round = 0; round < 500; round++)
        {
            var shares = Enumerable.Range(0, random.Next(1, 40))
                .Select(i => new DeviceShare($"0x{random.Next():x8}{i:x32}", random.Next(0, 3), random.Next(0, 10_000))).ToList();
            var weight = shares.Sum(s => s.Rows);
            if (weight == 0) continue;
            var rows = random.NextInt64(0, 3 * weight);
            var credits = random.NextInt64(0, long.MaxValue / 2);

            var allocations = SalesAttribution.Allocate(shares, rows, credits);

            Assert.Equal(rows, allocations.Sum(a => a.Rows));
            Assert.Equal(credits, allocations.Sum(a => a.Credits));
            foreach (var allocation in allocations)
            {
                var share = shares.Single(s => s.Device == allocation.Device && s.Epoch == allocation.Epoch).Rows;
                var floor = (long)(credits * (Int128)share / weight);
                Assert.InRange(allocation.Credits, floor, floor + 1);
            }
        }
    }

    [Fact]
    public void Allocate_NothingToSplit_GivesZeros()
    {
        Assert.All(SalesAttribution.Allocate([new(A, 1, 0), new(B, 1, 5)], 0, 0), a => Assert.Equal((0L, 0L), (a.Rows, a.Credits)));
        Assert.Empty(SalesAttribution.Allocate([], 0, 0));
    }

    [Fact]
    public void Allocate_BadShares_AreRefusedWithTheReason()
    {
        Assert.Contains("nobody", Assert.Throws<ArgumentException>(() => SalesAttribution.Allocate([new(A, 1, 0)], 1, 0)).Message);
        Assert.Contains("appears twice", Assert.Throws<ArgumentException>(() => SalesAttribution.Allocate([new(A, 1, 2), new(A, 1, 3)], 5, 5)).Message);
        Assert.Contains("negative", Assert.Throws<ArgumentException>(() => SalesAttribution.Allocate([new(A, 1, -2)], 0, 0)).Message);
        Assert.Contains("negative", Assert.Throws<ArgumentException>(() => SalesAttribution.Allocate([new(A, 1, 2)], 0, -1)).Message);
    }
}
