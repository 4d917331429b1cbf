using Pipeline.Core.Events;

namespace Pipeline.Marketplace.Attribution;

/// <summary>Rows of one device in one epoch that a charge delivered — or, for an aggregate, that the query read.</summary>
public sealed record DeviceShare(string Device, long Epoch, long Rows);

/// <summary>What a charge attributes to one device in one epoch: rows sold and credits earned, in whole units.</summary>
public sealed record DeviceAllocation(string Device, long Epoch, long Rows, long Credits);

/// <summary>
/// Splits a charge's rows and credits over the devices whose data it sold, in proportion to their shares, so that the
/// parts add up exactly to the totals: the largest-remainder method. Each part first gets the whole units of its exact
/// quota (total × share ÷ all shares, computed in integers); the units left over go one each to the largest remainders.
/// Ties go to the larger share, then to the lower device address (ordinal), then to the earlier epoch — a rule anyone
/// can apply again from the same numbers. When the rows delivered equal the shares' sum, each device gets its own rows.
/// </summary>
public static class SalesAttribution
{
    public static IReadOnlyList<DeviceAllocation> Allocate(IReadOnlyList<DeviceShare> shares, long rowsDelivered, long credits)
    {
        if (rowsDelivered < 0 || credits < 0) throw new ArgumentException("Rows and credits to attribute cannot be negative.");
        if (shares.Any(s => s.Rows < 0)) throw new ArgumentException("A device's share cannot be negative.", nameof(shares));
        if (shares.GroupBy(s => (s.Device, s.Epoch)).FirstOrDefault(g => g.Count() > 1) is { } twice)
            throw new ArgumentException($"Device {twice.Key.Device} appears twice for epoch {twice.Key.Epoch}; sum its rows into one share.", nameof(shares));
        var total = shares.Aggregate(Int128.Zero, (sum, s) => sum + s.Rows);
        if (total == 0 && (rowsDelivered > 0 || credits > 0))
            throw new ArgumentException("No device has a share, so there is nobody to attribute the charge to.", nameof(shares));

        var ordered = shares.OrderBy(s => s.Device, StringComparer.Ordinal).ThenBy(s => s.Epoch).ToList();
        var rows = LargestRemainder(ordered, rowsDelivered, total);
        var earned = LargestRemainder(ordered, credits, total);
        return ordered.Select((s, i) => new DeviceAllocation(s.Device, s.Epoch, rows[i], earned[i])).ToList();
    }

    /// <summary>
    /// The sale of a charge: its rows and credits allocated over the shares, lines that got nothing left out; null when
    /// no line is left (a query that read nothing of the grant, SELECT 1, sold nobody's data).
    /// </summary>
    public static SalesAttributed? Sale(string dataset, string grantId, string chargeId, IReadOnlyList<DeviceShare> shares, long rowsDelivered, long credits)
    {
        if (shares.Sum(s => s.Rows) == 0) return null;
        var lines = Allocate(shares, rowsDelivered, credits).Where(a => a.Rows > 0 || a.Credits > 0).Select(a => new SoldRows(a.Device, a.Epoch, a.Rows, a.Credits)).ToList();
        return lines.Count == 0 ? null : new SalesAttributed(dataset, grantId, chargeId, lines);
    }

    private static long[] LargestRemainder(List<DeviceShare> shares, long amount, Int128 total)
    {
        var parts = new long[shares.Count];
        if (amount == 0) return parts;
        var remainders = new Int128[shares.Count];
        long given = 0;
        for (var i = 0; i < shares.Count; i++)
        {
            var exact = amount * (Int128)shares[i].Rows;
            parts[i] = (long)(exact / total);
            remainders[i] = exact % total;
            given += parts[i];
        }
        // The leftover is fewer units than there are shares with a remainder, so each gets at most one.
        var order = Enumerable.Range(0, shares.Count)
            .OrderByDescending(i => remainders[i]).ThenByDescending(i => shares[i].Rows)
            .ThenBy(i => shares[i].Device, StringComparer.Ordinal).ThenBy(i => shares[i].Epoch);
        foreach (var i in order.Take((int)(amount - given))) parts[i]++;
        return parts;
    }
}
