using Marten;
using Npgsql;
using Pipeline.Infra.Postgres;
using Pipeline.Registry;

namespace Pipeline.Marketplace.Contributors;

public sealed record ContributorDevice(string Id, string Kind, IReadOnlyDictionary<string, string> Metadata, DateTimeOffset RegisteredAt);

/// <summary>Rows of one device sold in one dataset, and the credits they earned, over every charge.</summary>
public sealed record DeviceSales(string Device, string Dataset, long Rows, long Credits, long Charges);

/// <summary>What a contributor may read about themself: the devices they own now and what of those devices' data was sold.</summary>
public sealed class ContributorData(IDocumentStore store, NpgsqlDataSource dataSource)
{
    public async Task<IReadOnlyList<ContributorDevice>> DevicesAsync(string owner, CancellationToken cancellation)
    {
        await using var session = store.QuerySession();
        var devices = await session.Query<Device>().Where(d => d.Owner == owner).OrderBy(d => d.Id).ToListAsync(cancellation);
        return devices.Select(d => new ContributorDevice(d.Id, d.Kind.ToString().ToLowerInvariant(), d.Metadata, d.RegisteredAt)).ToList();
    }

    /// <summary>
    /// Summed in PostgreSQL from the sales' JSON (camelCase, as the store writes events) through
    /// <see cref="SalesByDeviceIndex"/>: the event types are written out, not parameters, so that the planner matches the
    /// indexes' predicates whatever plan it caches.
    /// </summary>
    public async Task<IReadOnlyList<DeviceSales>> SalesAsync(string owner, CancellationToken cancellation)
    {
        var devices = (await DevicesAsync(owner, cancellation)).Select(d => d.Id).ToArray();
        if (devices.Length == 0) return [];
        await using var command = dataSource.CreateCommand(SalesSql(store.Schema()));
        command.Parameters.Add(new NpgsqlParameter { Value = devices });
        await using var reader = await command.ExecuteReaderAsync(cancellation);
        var sales = new List<DeviceSales>();
        while (await reader.ReadAsync(cancellation))
            sales.Add(new DeviceSales(reader.GetString(0), reader.GetString(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4)));
        return sales;
    }

    /// <summary>The sales of the devices in $1 (a text array), per device and dataset: each charge's lines of those devices, and the sales stored one per device before.</summary>
    public static string SalesSql(string schema) => $"""
        SELECT device, dataset, sum(rows), sum(credits), count(DISTINCT charge) FROM (
            SELECT line ->> 'device' AS device, data ->> 'dataset' AS dataset, (line ->> 'rows')::bigint AS rows, (line ->> 'credits')::bigint AS credits, data ->> 'chargeId' AS charge
            FROM {schema}.mt_events CROSS JOIN LATERAL jsonb_array_elements(data -> 'lines') AS line
            WHERE type = '{SalesByDeviceIndex.SalesAttributedType}' AND {SalesByDeviceIndex.DevicesOfSale} ?| $1 AND line ->> 'device' = ANY($1)
            UNION ALL
            SELECT data ->> 'device', data ->> 'dataset', (data ->> 'rows')::bigint, (data ->> 'credits')::bigint, data ->> 'chargeId'
            FROM {schema}.mt_events WHERE type = '{SalesByDeviceIndex.DataSoldType}' AND data ->> 'device' = ANY($1)
        ) AS sales
        GROUP BY 1, 2 ORDER BY 1, 2
        """;
}
