using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Marten;
using Npgsql;
using Pipeline.Core.Events;
using Pipeline.Core.Envelope;
using Pipeline.Marketplace.Accounts;
using Pipeline.Marketplace.Contributors;
using Pipeline.Tests.Support;
using Xunit.Abstractions;

namespace Pipeline.Tests.Integration.Marketplace;

/// <summary>
/// The marketplace's money attacked over HTTP on a real host (PostgreSQL, DuckDB, the test's lake): quotas raced and
/// stretched over calendar months, another buyer's ids, numbers out of every range, an expired login challenge. Each
/// test states what must hold whatever the attacker sends: nothing delivered that was not paid for, nothing charged or
/// attributed twice, nobody else's data, and a refusal with its reason, never a 500.
/// </summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class MarketplaceAttackTests(StackFixture fixture, ITestOutputHelper output) : IAsyncLifetime
{
    private static readonly DateTimeOffset Nov23 = new(2026, 11, 23, 0, 0, 0, TimeSpan.Zero);
    private MarketTestHost _market = null!;

    public async Task InitializeAsync() => _market = await MarketTestHost.StartAsync(fixture, "it_market_attack");

    public async Task DisposeAsync() => await _market.DisposeAsync();

    [Fact]
    public async Task Subscription_BoughtForAMonthAtTheEndOfLastMonthAndUsedUpThen_DeliversNothingMoreThisMonth()
    {
        // Bought two minutes before this month began, its quota used a minute later, as the marketplace did then (the
        // events are appended as its charge path would have appended them). A credit per row, 100 rows.
        var (buyer, key) = await _market.CreateBuyerAsync(credits: 1_000);
        var now = DateTimeOffset.UtcNow;
        var monthStart = new DateTimeOffset(now.Year, now.Month, 1, 0, 0, 0, TimeSpan.Zero);
        var purchased = monthStart.AddMinutes(-2);
        var expires = now.AddHours(1);
        var months = GrantPricing.MonthsBetween(purchased, expires); // 1, except in the last days of a month
        var price = 100 * months;
        var grantId = ApiKeys.NewGrantId();
        await using (var session = _market.Host.Store.LightweightSession())
        {
            session.Events.Append(buyer,
                new GrantPurchased(buyer, grantId, "vehicle_signals", Nov23, null, null, null, null, null, null, null, 100, expires, price, purchased),
                new QueryCharged(buyer, grantId, "charge_last_month", 100, 2_000, 100, 0, monthStart.AddMinutes(-1)),
                new SalesAttributed("vehicle_signals", grantId, "charge_last_month", [new SoldRows(MarketLake.Devices[0], 0, 100, 100)]));
            await session.SaveChangesAsync();
        }

        var response = await _market.SendAsync(HttpMethod.Post, "/v1/query", key, new { grant = grantId, sql = "SELECT event_seq FROM vehicle_signals", format = "csv" });

        if (months == 1)
        {
            var problem = await MarketTestHost.AssertProblemAsync(response, HttpStatusCode.Forbidden, "quota_exhausted");
            Assert.Contains("buy a new grant", problem, StringComparison.Ordinal);
        }
        // Whatever the day: rows delivered and credits used (and so attributed to contributors) are at most what was paid.
        await using var query = _market.Host.Store.QuerySession();
        var events = (await query.Events.QueryAllRawEvents().Where(e => e.StreamKey == buyer).ToListAsync()).Select(e => e.Data).ToList();
        Assert.InRange(events.OfType<QueryCharged>().Sum(c => c.Rows), 100, 100 * months);
        Assert.InRange(events.OfType<QueryCharged>().Sum(c => c.Credits), 100, price);
        Assert.InRange(events.OfType<SalesAttributed>().SelectMany(s => s.Lines).Sum(l => l.Credits), 100, price);
    }

    [Fact]
    public async Task Queries_TwelveAtOnceOnOneGrant_DeliverAndChargeExactlyTheRowsOfTheQuota_NeverMore()
    {
        var (buyer, key) = await _market.CreateBuyerAsync(credits: 1_000);
        var grant = await _market.BuyAsync(key, GrantBody(rowQuota: 100));

        var responses = await Task.WhenAll(Enumerable.Range(0, 12).Select(_ =>
            _market.SendAsync(HttpMethod.Post, "/v1/query", key, new { grant = grant.Id, sql = "SELECT event_seq FROM vehicle_signals LIMIT 30", format = "csv" })));

        long delivered = 0, credits = 0;
        foreach (var response in responses)
        {
            if (response.StatusCode != HttpStatusCode.OK)
            {
                var body = await response.Content.ReadAsStringAsync();
                Assert.True(response.StatusCode is HttpStatusCode.Conflict or HttpStatusCode.Forbidden, body);
                Assert.Contains("\"reason\":\"quota_exhausted\"", body, StringComparison.Ordinal);
                continue;
            }
            var rows = (await response.Content.ReadAsStringAsync()).Split("\r\n", StringSplitOptions.RemoveEmptyEntries).Length - 1;
            Assert.Equal(rows.ToString(System.Globalization.CultureInfo.InvariantCulture), response.Headers.GetValues("X-Rows").Single());
            delivered += rows;
            credits += long.Parse(response.Headers.GetValues("X-Credits").Single(), System.Globalization.CultureInfo.InvariantCulture);
        }
        // Three of 30 rows charged, and a fourth cut to the 10 left when it began after them; every other one refused.
        Assert.InRange(delivered, 90, 100);
        var used = (await _market.AccountAsync(key)).Grants.Single();
        Assert.Equal((delivered, delivered), (used.RowsUsed, used.CreditsUsed));
        Assert.Equal(delivered, credits);
        Assert.Equal(delivered, (await SalesAsync(buyer)).SelectMany(s => s.Lines).Sum(l => l.Credits));
    }

    [Fact]
    public async Task Exports_TwoAtOnceOnAQuotaForOneSlice_ChargeTheSliceOnce_AndTheOtherEndsUncharged()
    {
        var (buyer, key) = await _market.CreateBuyerAsync(credits: 1_000);
        var device = MarketLake.Devices[2];
        var slice = _market.Lake.Rows.Count(r => r.Device == device);
        var grant = await _market.BuyAsync(key, GrantBody(rowQuota: slice, devices: [device]));

        var started = await Task.WhenAll(Enumerable.Range(0, 2).Select(_ => _market.SendAsync(HttpMethod.Post, "/v1/exports", key, new { grant = grant.Id, shards = 3 })));
        var jobs = new List<JsonElement>();
        foreach (var response in started)
        {
            if (response.StatusCode == HttpStatusCode.Accepted)
                jobs.Add(await _market.FinishedExportAsync(key, (await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString()!));
            else await MarketTestHost.AssertProblemAsync(response, HttpStatusCode.Forbidden, "quota_exhausted"); // the first was charged before the second began
        }

        var done = Assert.Single(jobs, j => j.GetProperty("status").GetString() == "done");
        Assert.All(jobs.Where(j => j.GetProperty("status").GetString() != "done"), j => Assert.Equal("failed", j.GetProperty("status").GetString()));
        Assert.Equal(slice, (await _market.AccountAsync(key)).Grants.Single().RowsUsed);
        await using var session = _market.Host.Store.QuerySession();
        var charge = Assert.Single((await session.Events.QueryAllRawEvents().Where(e => e.StreamKey == buyer).ToListAsync()).Select(e => e.Data).OfType<ExportCharged>());
        Assert.Equal(done.GetProperty("id").GetString(), charge.ExportId);

        // Its three shards hold the slice once: no reading in two shards, none missing.
        var id = done.GetProperty("id").GetString()!;
        var manifest = JsonDocument.Parse(await (await _market.SendAsync(HttpMethod.Get, $"/v1/exports/{id}/manifest", key)).Content.ReadAsStringAsync()).RootElement;
        var readings = new List<string>();
        foreach (var file in manifest.GetProperty("files").EnumerateArray())
        {
            var bytes = await (await _market.SendAsync(HttpMethod.Get, $"/v1/exports/{id}/files/{file.GetProperty("path").GetString()}", key)).Content.ReadAsByteArrayAsync();
            readings.AddRange((await MarketLake.ReadParquetAsync(new MemoryStream(bytes))).Select(r => r.Id));
        }
        Assert.Equal(_market.Lake.Rows.Where(r => r.Device == device).Select(r => r.ReadingId).Order(), readings.Order());
        Assert.Equal(slice, charge.Rows);
    }

    [Fact]
    public async Task AnotherBuyersGrantAndExport_AskedForByIdOnEveryEndpoint_AreUnknown_AndChargeNobody()
    {
        var (victim, victimKey) = await _market.CreateBuyerAsync(credits: 1_000);
        var grant = await _market.BuyAsync(victimKey, GrantBody(rowQuota: 1_000, devices: [MarketLake.Devices[0]]));
        var started = await _market.SendAsync(HttpMethod.Post, "/v1/exports", victimKey, new { grant = grant.Id });
        var exportId = (await started.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString()!;
        var export = await _market.FinishedExportAsync(victimKey, exportId);
        Assert.Equal("done", export.GetProperty("status").GetString());
        var file = JsonDocument.Parse(await (await _market.SendAsync(HttpMethod.Get, $"/v1/exports/{exportId}/manifest", victimKey)).Content.ReadAsStringAsync())
            .RootElement.GetProperty("files")[0].GetProperty("path").GetString();
        var before = (await _market.AccountAsync(victimKey)).Grants.Single();

        var (attackerId, attacker) = await _market.CreateBuyerAsync(credits: 1_000);
        await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Get, $"/v1/grants/{grant.Id}", attacker), HttpStatusCode.NotFound, "unknown_grant");
        await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Post, "/v1/query", attacker, new { grant = grant.Id, sql = "SELECT count(*) FROM vehicle_signals" }),
            HttpStatusCode.NotFound, "unknown_grant");
        await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Post, "/v1/exports", attacker, new { grant = grant.Id }), HttpStatusCode.NotFound, "unknown_grant");
        await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Get, $"/v1/grants/{grant.Id}/feed", attacker), HttpStatusCode.NotFound, "unknown_grant");
        foreach (var path in new[] { $"/v1/exports/{exportId}", $"/v1/exports/{exportId}/manifest", $"/v1/exports/{exportId}/manifest.sig", $"/v1/exports/{exportId}/files/{file}" })
            await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Get, path, attacker), HttpStatusCode.NotFound, "unknown_export");
        // Nor does the operator's key or a contributor's open a buyer's data: it is the wrong role.
        await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Get, $"/v1/exports/{exportId}/manifest", _market.OperatorKey), HttpStatusCode.Forbidden, "wrong_role");

        var after = (await _market.AccountAsync(victimKey)).Grants.Single();
        Assert.Equal((before.RowsUsed, before.CreditsUsed), (after.RowsUsed, after.CreditsUsed));
        Assert.Single(await SalesAsync(victim)); // the export's
        Assert.Empty(await SalesAsync(attackerId));
    }

    [Theory]
    [InlineData("SELECT list(reading_id) FROM vehicle_signals")]
    [InlineData("SELECT array_agg(struct_pack(t := device_time, s := speed_kmh)) FROM vehicle_signals")]
    [InlineData("SELECT string_agg(reading_id, ',') FROM vehicle_signals")]
    [InlineData("SELECT group_concat(reading_id) FROM vehicle_signals")]
    [InlineData("SELECT histogram(reading_id) FROM vehicle_signals")]
    [InlineData("SELECT device, list(speed_kmh) FROM vehicle_signals GROUP BY device")]
    [InlineData("SELECT (SELECT list(reading_id) FROM vehicle_signals) AS everything")]
    [InlineData("SELECT max(reading_id, 1000000) FROM vehicle_signals")]
    [InlineData("SELECT min(event_seq, 5000) FROM vehicle_signals")]
    [InlineData("SELECT arg_max(reading_id, event_seq, 1000000) FROM vehicle_signals")]
    [InlineData("SELECT max_by(struct_pack(i := reading_id, s := speed_kmh), event_seq, 100000) FROM vehicle_signals")]
    [InlineData("SELECT max(event_seq, 1000) OVER () FROM vehicle_signals LIMIT 1")]
    [InlineData("SELECT quantile_disc(reading_id, [0.001, 0.002, 0.003, 0.004]) FROM vehicle_signals")]
    [InlineData("SELECT quantile_disc(event_seq, '[0.1, 0.2]'::DOUBLE[]) FROM vehicle_signals")]
    public async Task Query_PackingManyRowsIntoOneValue_IsRefused_NotSoldAsOneRow(string sql)
    {
        // A grant of 10 rows (10 credits) would otherwise read the whole slice — 1,800 rows — as one row, for one credit.
        var (_, key) = await _market.CreateBuyerAsync(credits: 100);
        var grant = await _market.BuyAsync(key, GrantBody(rowQuota: 10));
        var response = await _market.SendAsync(HttpMethod.Post, "/v1/query", key, new { grant = grant.Id, sql });
        await MarketTestHost.AssertProblemAsync(response, HttpStatusCode.BadRequest, "function_not_allowed");
        Assert.Equal(0, (await _market.AccountAsync(key)).Grants.Single().RowsUsed);
    }

    [Fact]
    public async Task Query_OneValueAggregatesOverTheSlice_AreAnsweredAsOneRow()
    {
        var (_, key) = await _market.CreateBuyerAsync(credits: 100);
        var grant = await _market.BuyAsync(key, GrantBody(rowQuota: 10));
        var response = await _market.SendAsync(HttpMethod.Post, "/v1/query", key, new
        {
            grant = grant.Id,
            sql = "SELECT max(event_seq) AS last, arg_max(reading_id, event_seq) AS newest, quantile_disc(event_seq, 0.5) AS middle, min_by(seq, event_seq) AS first_seq FROM vehicle_signals",
        });
        Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
        var row = Assert.Single(JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.EnumerateArray());
        Assert.Equal(_market.Lake.Rows.Max(r => r.EventSeq), row.GetProperty("last").GetInt64());
        Assert.Equal(_market.Lake.Rows.MaxBy(r => r.EventSeq)!.ReadingId, row.GetProperty("newest").GetString());
        Assert.Equal(1, (await _market.AccountAsync(key)).Grants.Single().RowsUsed);
    }

    [Theory]
    [InlineData("SELECT CAST('id ' || reading_id AS INTEGER) FROM vehicle_signals")]
    [InlineData("SELECT CAST(concat_ws('|', device, reading_id, speed_kmh, latitude, longitude) AS BIGINT) FROM vehicle_signals WHERE event_seq = 400")]
    [InlineData("SELECT strptime(device, '%Y') FROM vehicle_signals")]
    [InlineData("SELECT * FROM vehicle_signals WHERE CAST('id ' || reading_id AS INTEGER) > 0")]
    [InlineData("SELECT count(*) FROM vehicle_signals WHERE event_seq = 400 AND CAST(reading_id AS TINYINT) > 0")]
    public async Task Query_FailingOnARowsValue_DoesNotQuoteTheValueInItsRefusal_WhichWouldSellRowsForNothing(string sql)
    {
        // A 1-credit grant of one row used to read any row of the slice, a query at a time and free of charge, from DuckDB's
        // error message: "Conversion Error: Could not convert string '0x…' to INT32" quoted the row's values.
        var (buyer, key) = await _market.CreateBuyerAsync(credits: 100);
        var grant = await _market.BuyAsync(key, GrantBody(rowQuota: 1));

        var problem = await MarketTestHost.AssertProblemAsync(
            await _market.SendAsync(HttpMethod.Post, "/v1/query", key, new { grant = grant.Id, sql }), HttpStatusCode.UnprocessableEntity, "query_failed");

        Assert.DoesNotContain(_market.Lake.Rows, r => problem.Contains(r.ReadingId, StringComparison.OrdinalIgnoreCase));
        Assert.DoesNotContain(MarketLake.Devices, d => problem.Contains(d[2..], StringComparison.OrdinalIgnoreCase));
        Assert.True(Regex.IsMatch(problem, "Conversion|Invalid Input|Out of Range"), problem); // the kind of error is still said
        Assert.Equal(0, (await _market.AccountAsync(key)).Grants.Single().RowsUsed);
        Assert.Empty(await SalesAsync(buyer));
    }

    [Fact]
    public async Task Query_NamingAColumnThatIsNotThere_StillHearsDuckDbsMessage()
    {
        // Errors found before a row is read (names, types, syntax) quote only the query, so they are passed on whole.
        var (_, key) = await _market.CreateBuyerAsync(credits: 100);
        var grant = await _market.BuyAsync(key, GrantBody(rowQuota: 1));
        var problem = await MarketTestHost.AssertProblemAsync(
            await _market.SendAsync(HttpMethod.Post, "/v1/query", key, new { grant = grant.Id, sql = "SELECT speed_kmhh FROM vehicle_signals" }),
            HttpStatusCode.UnprocessableEntity, "query_failed");
        Assert.True(problem.Contains("speed_kmhh", StringComparison.Ordinal), problem);
    }

    [Fact]
    public async Task Grants_ExpiredOrUsedUp_LeaveTheAccountDocument_AndThoseThatCanStillDeliverAreBounded()
    {
        // The account document is rewritten at every charge and remembered by every replica. At a credit a grant it held
        // every grant ever bought: 150 expired, one used up and 99 live here (appended as the purchase and charge paths do).
        var (buyer, key) = await _market.CreateBuyerAsync(credits: 10_000);
        var now = DateTimeOffset.UtcNow;
        var usedUp = ApiKeys.NewGrantId();
        await using (var session = _market.Host.Store.LightweightSession())
        {
            GrantPurchased Bought(string id, DateTimeOffset expires) =>
                new(buyer, id, "vehicle_signals", Nov23, null, null, null, null, null, [MarketLake.Devices[0]], null, 10, expires, 1, now.AddDays(-20));
            session.Events.Append(buyer, Enumerable.Range(0, 150).Select(_ => (object)Bought(ApiKeys.NewGrantId(), now.AddDays(-1))).ToArray());
            session.Events.Append(buyer, Bought(usedUp, now.AddDays(7)));
            session.Events.Append(buyer, Enumerable.Range(0, 99).Select(_ => (object)Bought(ApiKeys.NewGrantId(), now.AddDays(7))).ToArray());
            session.Events.Append(buyer, new QueryCharged(buyer, usedUp, "charge_all", 10, 500, 1, 0, now.AddDays(-2)));
            await session.SaveChangesAsync();
        }
        Assert.Equal(250, (await _market.AccountAsync(key)).Grants.Count);

        var bought = await _market.BuyAsync(key, GrantBody(rowQuota: 10));

        var account = await _market.AccountAsync(key);
        Assert.Equal(100, account.Grants.Count);
        Assert.All(account.Grants, g => Assert.True(g.ExpiresAt > now && g.RowsLeft > 0));
        Assert.Contains(account.Grants, g => g.Id == bought.Id);
        await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Post, "/v1/query", key, new { grant = usedUp, sql = "SELECT 1" }),
            HttpStatusCode.NotFound, "unknown_grant");

        // A hundred that can still deliver: the next purchase is refused, and costs nothing.
        var refused = await _market.SendAsync(HttpMethod.Post, "/v1/grants", key, GrantBody(rowQuota: 10));
        await MarketTestHost.AssertProblemAsync(refused, HttpStatusCode.Conflict, "too_many_grants");
        Assert.Equal(account.Balance, (await _market.AccountAsync(key)).Balance);

        // Using one up makes room for exactly one more.
        var used = await _market.SendAsync(HttpMethod.Post, "/v1/query", key, new { grant = bought.Id, sql = "SELECT event_seq FROM vehicle_signals LIMIT 10", format = "csv" });
        Assert.True(used.StatusCode == HttpStatusCode.OK, await used.Content.ReadAsStringAsync());
        await _market.BuyAsync(key, GrantBody(rowQuota: 10));
        await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Post, "/v1/grants", key, GrantBody(rowQuota: 10)), HttpStatusCode.Conflict, "too_many_grants");
        Assert.Equal(100, (await _market.AccountAsync(key)).Grants.Count);
    }

    [Fact]
    public async Task Queries_ThatDeliverNoRow_AreNeitherChargedNorRecorded_SoAStrangerCannotGrowTheEventLogForNothing()
    {
        // An empty result delivers nothing of the grant and cost nothing, yet each was a QueryCharged of 0 rows and 0
        // credits appended to the buyer's stream (and the account rewritten): 20 keys × 20 requests a second of a
        // 1-credit grant stored ~1.4 million events an hour, for nothing.
        var (buyer, key) = await _market.CreateBuyerAsync(credits: 100);
        var grant = await _market.BuyAsync(key, GrantBody(rowQuota: 1));
        var before = await BuyerEventsAsync(buyer);

        foreach (var (sql, format) in new[]
        {
            ("SELECT event_seq FROM vehicle_signals WHERE event_seq < 0", "csv"),
            ("SELECT * FROM vehicle_signals WHERE false", "json"),
            ("SELECT device, count(*) FROM vehicle_signals WHERE speed_kmh > 1000 GROUP BY device", "parquet"),
            ("SELECT event_seq FROM vehicle_signals LIMIT 0", "arrow"),
        })
        {
            var response = await _market.SendAsync(HttpMethod.Post, "/v1/query", key, new { grant = grant.Id, sql, format });
            Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
            Assert.Equal("0", response.Headers.GetValues("X-Rows").Single());
            Assert.Equal("0", response.Headers.GetValues("X-Credits").Single());
            Assert.False(response.Headers.Contains("X-Charge-Id"));
        }

        Assert.Equal(before, await BuyerEventsAsync(buyer));
        // The grant's one row is still there to be bought with a row.
        var one = await _market.SendAsync(HttpMethod.Post, "/v1/query", key, new { grant = grant.Id, sql = "SELECT event_seq FROM vehicle_signals LIMIT 1", format = "csv" });
        Assert.Equal("1", one.Headers.GetValues("X-Rows").Single());
        Assert.Equal(before + 2, await BuyerEventsAsync(buyer)); // its QueryCharged and SalesAttributed
    }

    private async Task<int> BuyerEventsAsync(string buyer)
    {
        await using var session = _market.Host.Store.QuerySession();
        return await session.Events.QueryAllRawEvents().Where(e => e.StreamKey == buyer).CountAsync();
    }

    /// <summary>Numbers a stranger controls, out of range in every way a JSON number or string can be.</summary>
    public static TheoryData<string, string> OutOfRange => new()
    {
        { "/v1/grants", Grant("\"rowQuota\": 0") },
        { "/v1/grants", Grant("\"rowQuota\": -9223372036854775808") },
        { "/v1/grants", Grant("\"rowQuota\": 100000001") },
        { "/v1/grants", Grant("\"rowQuota\": 9223372036854775807") },
        { "/v1/grants", Grant("\"rowQuota\": 1.5") },
        { "/v1/grants", Grant("\"rowQuota\": 1e400") },
        { "/v1/grants", Grant("\"rowQuota\": \"NaN\"") },
        { "/v1/grants", Grant("\"rowQuota\": 10, \"byteQuotaMegabytes\": 0") },
        { "/v1/grants", Grant("\"rowQuota\": 10, \"byteQuotaMegabytes\": -1") },
        { "/v1/grants", Grant("\"rowQuota\": 10, \"byteQuotaMegabytes\": 0.0000001") },
        { "/v1/grants", Grant("\"rowQuota\": 10, \"byteQuotaMegabytes\": 1000001") },
        { "/v1/grants", Grant("\"rowQuota\": 10, \"byteQuotaMegabytes\": 1e400") },
        { "/v1/grants", Grant("\"rowQuota\": 10, \"box\": {\"south\": 10, \"west\": 0, \"north\": 5, \"east\": 1}") },
        { "/v1/grants", Grant("\"rowQuota\": 10, \"box\": {\"south\": 0, \"west\": -181, \"north\": 1, \"east\": 1}") },
        { "/v1/grants", Grant("\"rowQuota\": 10, \"box\": {\"south\": 0, \"west\": 0, \"north\": 1e400, \"east\": 1}") },
        { "/v1/grants", Grant("\"rowQuota\": 10, \"devices\": []") },
        { "/v1/grants", Grant("\"rowQuota\": 10, \"until\": \"2026-11-22T00:00:00Z\"") },
        { "/v1/grants", Grant("\"rowQuota\": 10, \"until\": \"2026-11-23T00:00:00Z\"") },
        { "/v1/grants", """{"dataset": "vehicle_signals", "from": "2026-11-23T00:00:00Z", "rowQuota": 10, "expiresAt": "2020-01-01T00:00:00Z"}""" },
        { "/v1/grants", """{"dataset": "vehicle_signals", "from": "2026-11-23T00:00:00Z", "rowQuota": 10, "expiresAt": "9999-12-31T23:59:59Z"}""" },
        { "/v1/grants", """{"dataset": "vehicle_signals", "from": "not a time", "rowQuota": 10, "expiresAt": "2099-01-01T00:00:00Z"}""" },
        { "/v1/exports", "{\"grant\": \"GRANT\", \"shards\": 0}" },
        { "/v1/exports", "{\"grant\": \"GRANT\", \"shards\": -1}" },
        { "/v1/exports", "{\"grant\": \"GRANT\", \"shards\": 257}" },
        { "/v1/exports", "{\"grant\": \"GRANT\", \"shards\": 2147483648}" },
        { "/v1/query", "{\"grant\": \"GRANT\", \"sql\": \"SELECT 1\", \"asOf\": -1}" },
        { "/v1/query", "{\"grant\": \"GRANT\", \"sql\": \"SELECT 1\", \"asOf\": 9223372036854775807}" },
        { "/v1/query", "{\"grant\": \"GRANT\", \"sql\": \"SELECT 1\", \"asOf\": 1e30}" },
        { "/v1/buyers/BUYER/credits", "{\"credits\": 0}" },
        { "/v1/buyers/BUYER/credits", "{\"credits\": -5}" },
        { "/v1/buyers/BUYER/credits", "{\"credits\": 1000000000001}" },
        { "/v1/buyers", "{\"name\": \"x\", \"credits\": -1}" },
    };

    private static string Grant(string members) => $$"""{"dataset": "vehicle_signals", "from": "2026-11-23T00:00:00Z", "expiresAt": "2099-01-01T00:00:00Z", {{members}}}""";

    [Theory]
    [MemberData(nameof(OutOfRange))]
    public async Task OutOfRangeNumber_InAGrantExportQueryOrCredits_IsRefusedWithAReason_AndChangesNothing(string path, string body)
    {
        var (buyer, key) = await _market.CreateBuyerAsync(credits: 1_000);
        var grant = await _market.BuyAsync(key, GrantBody(rowQuota: 10));
        var operatorCall = path.StartsWith("/v1/buyers", StringComparison.Ordinal);
        using var request = new HttpRequestMessage(HttpMethod.Post, path.Replace("BUYER", buyer, StringComparison.Ordinal))
        {
            Content = new StringContent(body.Replace("GRANT", grant.Id, StringComparison.Ordinal), Encoding.UTF8, "application/json"),
        };
        request.Headers.TryAddWithoutValidation("Authorization", $"Bearer {(operatorCall ? _market.OperatorKey : key)}");
        var response = await _market.Host.Api.SendAsync(request);

        var problem = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest, $"{response.StatusCode}: {problem}");
        Assert.False(string.IsNullOrEmpty(JsonDocument.Parse(problem).RootElement.GetProperty("reason").GetString()));
        var account = await _market.AccountAsync(key);
        Assert.Equal(990, account.Balance);
        Assert.Equal((0L, 0L), (account.Grants.Single().RowsUsed, account.Grants.Single().CreditsUsed));
        Assert.Single(account.Grants);
    }

    [Fact]
    public async Task ContributorChallenge_IssuedHereButExpired_IsRefusedStaleChallenge_WhileTheSameForgeryUnexpiredIsAccepted()
    {
        // The attacker here holds what only the marketplace has — its login key — to make a challenge exactly as it
        // would have been issued six minutes ago: the expiry inside it is what refuses it.
        var owner = Pipeline.Core.Crypto.EthKey.Generate();
        var address = owner.Address.ToLowerHex();
        var issued = (await (await _market.SendAsync(HttpMethod.Post, "/v1/contributors/challenge", null, new { address })).Content.ReadFromJsonAsync<JsonElement>())
            .GetProperty("message").GetString()!;
        byte[] loginKey;
        await using (var connection = new NpgsqlConnection(_market.Host.PostgresConnectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"SELECT secret FROM {_market.Host.Schema}.market_login_key WHERE id = 1", connection);
            loginKey = (byte[])(await command.ExecuteScalarAsync())!;
        }
        string Reissued(DateTimeOffset expires)
        {
            var body = Regex.Replace(issued[..issued.LastIndexOf("\nTicket: ", StringComparison.Ordinal)], "Expires: [^\n]+", $"Expires: {expires.UtcDateTime:yyyy-MM-ddTHH:mm:ssZ}");
            return body + "\nTicket: " + Convert.ToHexStringLower(HMACSHA256.HashData(loginKey, Encoding.UTF8.GetBytes(body)));
        }
        async Task<HttpResponseMessage> TradeAsync(string message) => await _market.SendAsync(HttpMethod.Post, "/v1/contributors/session", null,
            new { message, signature = RepositoryTools.Run(RepositoryTools.Cast, ["wallet", "sign", "--private-key", owner.ToHex(), message]).Trim() });

        var expired = await TradeAsync(Reissued(DateTimeOffset.UtcNow.AddSeconds(-1)));
        Assert.Contains("expired", await MarketTestHost.AssertProblemAsync(expired, HttpStatusCode.Unauthorized, "stale_challenge"), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await TradeAsync(Reissued(DateTimeOffset.UtcNow.AddMinutes(4)))).StatusCode);
    }

    [Fact]
    public async Task MakeGrant_WithTenThousandMoreDevicesClaimingTheMake_ReadsTheSameRows_AndAQueryNoLongerReadsTheirDocuments()
    {
        // The lake's first two devices are Volvos (one registered "VOLVO": makes match in any case), the third a Saab, and
        // a weather station claims Volvo too: a vehicle grant never covers it.
        await _market.RegisterAsync(
            MarketTestHost.Device(MarketLake.Devices[0], "Volvo"), MarketTestHost.Device(MarketLake.Devices[1], "VOLVO"), MarketTestHost.Device(MarketLake.Devices[2], "Saab"),
            MarketTestHost.Device("0x" + new string('0', 38) + "d4", "Volvo", DeviceKind.Weather));
        var (_, key) = await _market.CreateBuyerAsync(credits: 10_000);
        var grant = await _market.BuyAsync(key, new { dataset = "vehicle_signals", from = Nov23, make = "volvo", rowQuota = 5_000, expiresAt = DateTimeOffset.UtcNow.AddDays(7) });
        const string sql = "SELECT device, count(*) AS n FROM vehicle_signals GROUP BY device ORDER BY device";
        var expected = string.Join("\r\n", _market.Lake.Rows.Where(r => MarketLake.Devices[..2].Contains(r.Device)).GroupBy(r => r.Device).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Key},{g.Count()}"));

        async Task<double> MedianQueryMillisecondsAsync()
        {
            var times = new List<double>();
            for (var i = 0; i < 9; i++)
            {
                var started = System.Diagnostics.Stopwatch.GetTimestamp();
                var response = await _market.SendAsync(HttpMethod.Post, "/v1/query", key, new { grant = grant.Id, sql, format = "csv" });
                times.Add(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalMilliseconds);
                var body = await response.Content.ReadAsStringAsync();
                Assert.True(response.StatusCode == HttpStatusCode.OK, body);
                Assert.Equal("device,n\r\n" + expected, body.TrimEnd());
            }
            return times.Order().ElementAt(times.Count / 2);
        }
        await MedianQueryMillisecondsAsync(); // warm: the first sandbox, the statement's validation
        var few = await MedianQueryMillisecondsAsync();

        // An attacker registers 10,000 vehicles claiming the make (they have no rows in the lake).
        await _market.RegisterAsync([.. Enumerable.Range(0, 10_000).Select(i => MarketTestHost.Device($"0x{i + 0x1000:x40}", "Volvo"))]);
        await MedianQueryMillisecondsAsync();
        var many = await MedianQueryMillisecondsAsync();

        output.WriteLine($"Median make-filtered query: {few:0.0} ms, {many:0.0} ms with 10,000 more devices claiming the make.");
        // Each query read all 10,000 documents and bound their 10,000 addresses into the view: 11-14x the median without
        // them (load 11-19). What is left grows with the make's devices still (the sandbox's key over the list, its table):
        // 1.5-7x in the runs seen, so the bound is loose enough not to fail on a loaded machine, tight enough for the old cost.
        Assert.True(many < few * 8 + 50, $"A make-filtered query took {many:0.0} ms at the median with 10,000 more devices claiming the make, {few:0.0} ms without.");
        // The list the view reads is the sandbox's own table, which no query may name.
        var hidden = await _market.SendAsync(HttpMethod.Post, "/v1/query", key, new { grant = grant.Id, sql = "SELECT count(*) FROM granted_devices.vehicle_signals", format = "csv" });
        Assert.Contains("\"reason\":\"unknown_table\"", await hidden.Content.ReadAsStringAsync(), StringComparison.Ordinal);

        // The make's devices are remembered between queries until the registry changes: the Saab re-registered as a
        // Volvo is in the grant's rows once its notification arrives (a moment; its rows would reach the lake later).
        await _market.RegisterAsync(MarketTestHost.Device(MarketLake.Devices[2], "volvo"));
        var all = string.Join("\r\n", _market.Lake.Rows.GroupBy(r => r.Device).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => $"{g.Key},{g.Count()}"));
        var waiting = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            var body = await (await _market.SendAsync(HttpMethod.Post, "/v1/query", key, new { grant = grant.Id, sql, format = "csv" })).Content.ReadAsStringAsync();
            if (body.TrimEnd() == "device,n\r\n" + all) break;
            Assert.True(waiting.Elapsed < TimeSpan.FromSeconds(10), "The re-registered device's rows were still not in the make's grant after 10 s:\n" + body);
            await Task.Delay(50);
        }
    }

    [Fact]
    public async Task ContributorLogins_OfOneAddressWithoutEnd_KeepItsNewestSessionsOnly_AndAreRefusedPastTheBound()
    {
        var owner = Pipeline.Core.Crypto.EthKey.Generate();
        var address = owner.Address.ToLowerHex();
        async Task<HttpResponseMessage> LoginAsync()
        {
            var message = (await (await _market.SendAsync(HttpMethod.Post, "/v1/contributors/challenge", null, new { address })).Content.ReadFromJsonAsync<JsonElement>())
                .GetProperty("message").GetString()!;
            var signature = "0x" + Convert.ToHexStringLower(owner.SignPersonal(Encoding.UTF8.GetBytes(message)));
            return await _market.SendAsync(HttpMethod.Post, "/v1/contributors/session", null, new { message, signature });
        }
        async Task<(long Sessions, long Traded)> StoredAsync()
        {
            await using var connection = new NpgsqlConnection(_market.Host.PostgresConnectionString);
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"""
                SELECT (SELECT count(*) FROM {_market.Host.Schema}.market_contributor_sessions WHERE address = $1),
                       (SELECT count(*) FROM {_market.Host.Schema}.market_login_challenges WHERE address = $1)
                """, connection);
            command.Parameters.Add(new NpgsqlParameter { Value = address });
            await using var reader = await command.ExecuteReaderAsync();
            await reader.ReadAsync();
            return (reader.GetInt64(0), reader.GetInt64(1));
        }

        var tokens = new List<string>();
        for (var i = 0; i < ContributorLogin.MaxLoginsPerAddress; i++)
        {
            var response = await LoginAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK, await response.Content.ReadAsStringAsync());
            tokens.Add((await response.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("token").GetString()!);
        }
        await MarketTestHost.AssertProblemAsync(await LoginAsync(), (HttpStatusCode)429, "too_many_logins");

        // The newest sessions work, the older ones ended; the tables hold the bounds and no more.
        foreach (var (token, i) in tokens.Select((t, i) => (t, i)))
        {
            var devices = await _market.SendAsync(HttpMethod.Get, "/v1/contributor/devices", token);
            if (i >= tokens.Count - ContributorLogin.MaxSessionsPerAddress) Assert.Equal(HttpStatusCode.OK, devices.StatusCode);
            else await MarketTestHost.AssertProblemAsync(devices, HttpStatusCode.Unauthorized, "unknown_key");
        }
        Assert.Equal((ContributorLogin.MaxSessionsPerAddress, ContributorLogin.MaxLoginsPerAddress), await StoredAsync());
        // Another address is not held up by this one.
        var other = Pipeline.Core.Crypto.EthKey.Generate();
        var otherMessage = (await (await _market.SendAsync(HttpMethod.Post, "/v1/contributors/challenge", null, new { address = other.Address.ToLowerHex() })).Content.ReadFromJsonAsync<JsonElement>())
            .GetProperty("message").GetString()!;
        Assert.Equal(HttpStatusCode.OK, (await _market.SendAsync(HttpMethod.Post, "/v1/contributors/session", null,
            new { message = otherMessage, signature = "0x" + Convert.ToHexStringLower(other.SignPersonal(Encoding.UTF8.GetBytes(otherMessage))) })).StatusCode);
    }

    [Fact]
    public async Task RewardsOwnersAtAnEpochsEnd_ReadOnlyTheDevicesAskedFor_EachAsOfTheEndAndTheSequence()
    {
        // Strangers' registrations, which an epoch's close without their rows or sales has no need to read.
        string Address(int i) => $"0x{i:x40}";
        var end = DateTimeOffset.UtcNow;
        DeviceRegistered Registered(string device, string owner, DateTimeOffset at) => new(device, owner, DeviceKind.Vehicle, new Dictionary<string, string>(), "", "", "", at);
        OwnershipTransferred Transferred(string device, string from, string to, DateTimeOffset at) => new(device, from, to, "", "", "", at);
        var (sold, transferred, late, stranger) = (Address(0xa0001), Address(0xa0002), Address(0xa0003), Address(0xa0004));
        long through;
        await using (var session = _market.Host.Store.LightweightSession())
        {
            session.Events.Append(sold, Registered(sold, Address(1), end.AddHours(-2)));
            session.Events.Append(transferred, Registered(transferred, Address(1), end.AddHours(-2)), Transferred(transferred, Address(1), Address(2), end.AddMinutes(-1)),
                Transferred(transferred, Address(2), Address(3), end.AddMinutes(1)));
            session.Events.Append(late, Registered(late, Address(1), end.AddMinutes(5)));
            session.Events.Append(stranger, Registered(stranger, Address(9), end.AddHours(-1)));
            await session.SaveChangesAsync();
        }
        await using (var session = _market.Host.Store.QuerySession())
            through = (await session.Events.FetchStreamAsync(late)).Max(e => e.Sequence);
        await using (var session = _market.Host.Store.LightweightSession())
        {
            // Recorded after the close's sequence: not read, whatever its time says.
            session.Events.Append(sold, Transferred(sold, Address(1), Address(4), end.AddHours(-1)));
            await session.SaveChangesAsync();
        }

        var owners = await _market.Host.Create<Pipeline.Rewards.Stage.EpochInputsReader>().OwnersAtAsync(
            [Pipeline.Core.Crypto.EthAddress.Parse(sold), Pipeline.Core.Crypto.EthAddress.Parse(transferred), Pipeline.Core.Crypto.EthAddress.Parse(late)], end, through, CancellationToken.None);

        Assert.Equal([(sold, Address(1)), (transferred, Address(2))], owners.Select(o => (o.Key.ToLowerHex(), o.Value.ToLowerHex())).Order());
    }

    private async Task<List<SalesAttributed>> SalesAsync(string buyer)
    {
        await using var session = _market.Host.Store.QuerySession();
        return (await session.Events.QueryAllRawEvents().Where(e => e.StreamKey == buyer).ToListAsync()).Select(e => e.Data).OfType<SalesAttributed>().ToList();
    }

    private static object GrantBody(long rowQuota, string[]? devices = null) => new
    {
        dataset = "vehicle_signals",
        from = Nov23,
        devices,
        rowQuota,
        expiresAt = DateTimeOffset.UtcNow.AddDays(7),
    };
}
