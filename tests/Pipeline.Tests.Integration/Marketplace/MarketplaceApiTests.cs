using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Marten;
using Microsoft.Extensions.DependencyInjection;
using Pipeline.Cli.Hosting;
using Pipeline.Core.Events;
using Pipeline.Infra.Hosting;
using Pipeline.Marketplace;
using Pipeline.Marketplace.Accounts;
using Pipeline.Marketplace.Catalog;
using Pipeline.Marketplace.Sandbox;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Integration.Marketplace;

/// <summary>
/// The marketplace over HTTP on the API port of a real host: the lake is the test's own Parquet files recorded in the
/// real manifest (PostgreSQL), accounts are Marten streams, queries run in the sandbox. Every test makes its own buyer.
/// </summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class MarketplaceApiTests(StackFixture fixture) : IAsyncLifetime
{
    private static readonly DateTimeOffset Nov23 = new(2026, 11, 23, 0, 0, 0, TimeSpan.Zero);
    private MarketTestHost _market = null!;

    public async Task InitializeAsync() => _market = await MarketTestHost.StartAsync(fixture, "it_market_api", new Dictionary<string, string?>
    {
        ["Marketplace:QueryTimeout"] = "00:00:02",
        ["Marketplace:CatalogRefresh"] = "00:00:00", // each request after the lake moves starts a recompute
    });

    public async Task DisposeAsync() => await _market.DisposeAsync();

    [Fact]
    public async Task Catalog_WithoutKey_DescribesTheLakeAndPreviewsTwentyRows()
    {
        var datasets = await _market.Host.Api.GetFromJsonAsync<List<DatasetSummary>>("/v1/datasets", ServiceDefaults.WireJson);
        var vehicles = datasets!.Single(d => d.Name == "vehicle_signals");
        Assert.Equal(_market.Lake.Rows.Count, vehicles.Rows);
        Assert.Equal(3, vehicles.Devices);
        Assert.Equal(_market.Lake.Rows.Min(r => r.DeviceTime), vehicles.From);
        Assert.Equal(_market.Lake.Rows.Max(r => r.EventSeq), vehicles.LakeCheckpoint);
        Assert.Equal(0, datasets!.Single(d => d.Name == "weather_observations").Rows);

        var detail = await _market.Host.Api.GetFromJsonAsync<DatasetDetail>("/v1/datasets/vehicle_signals", ServiceDefaults.WireJson);
        Assert.Contains(detail!.Schema, c => c.Name == "speed_kmh" && c.Unit == "km/h");
        Assert.Equal(_market.Lake.Rows.Count, detail.Regions.Sum(r => r.Rows));

        var preview = await _market.Host.Api.GetAsync("/v1/datasets/vehicle_signals/preview");
        var rows = JsonDocument.Parse(await preview.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(MarketplaceEndpoints.PreviewRows, rows.GetArrayLength());
        Assert.Equal(_market.Lake.Rows.Max(r => r.EventSeq), rows[0].GetProperty("event_seq").GetInt64());

        await MarketTestHost.AssertProblemAsync(await _market.Host.Api.GetAsync("/v1/datasets/secrets"), HttpStatusCode.NotFound, "unknown_dataset");
        await MarketTestHost.AssertProblemAsync(await _market.Host.Api.GetAsync("/v1/datasets/reading_rejections/preview"), HttpStatusCode.NotFound, "unknown_dataset");
    }

    [Fact]
    public async Task Catalog_AfterTheLakeMoves_AnswersTheLastComputedCatalogForItsCheckpoint_ThenTheNewOneExactly_Issue15()
    {
        var before = await VehicleSummaryAsync();
        var checkpoint = _market.Lake.Rows.Max(r => r.EventSeq);
        Assert.Equal((checkpoint, _market.Lake.Rows.Count), (before.LakeCheckpoint, before.Rows));

        await _market.Lake.ProjectAsync(_market.Host, rows: 300);
        // Answered from the catalog already computed, which names its own checkpoint; the recompute runs behind it.
        var during = await VehicleSummaryAsync();
        Assert.Equal((checkpoint, before.Rows, before.Until), (during.LakeCheckpoint, during.Rows, during.Until));

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var after = during;
        while (after.LakeCheckpoint == checkpoint)
        {
            await Task.Delay(20, timeout.Token); // polls until the recompute is handed out, without spending the rate limit
            after = await VehicleSummaryAsync(timeout.Token);
        }
        Assert.Equal((_market.Lake.Rows.Max(r => r.EventSeq), _market.Lake.Rows.Count, _market.Lake.Rows.Max(r => r.DeviceTime)), (after.LakeCheckpoint, after.Rows, after.Until));
    }

    private async Task<DatasetSummary> VehicleSummaryAsync(CancellationToken cancellation = default) =>
        (await _market.Host.Api.GetFromJsonAsync<List<DatasetSummary>>("/v1/datasets", ServiceDefaults.WireJson, cancellation))!.Single(d => d.Name == "vehicle_signals");

    [Fact]
    public async Task Keys_MissingWrongRevokedOrOfTheWrongRole_AreRefusedWithTheirReason()
    {
        var (buyer, key) = await _market.CreateBuyerAsync(credits: 0);
        await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Get, "/v1/account", null), HttpStatusCode.Unauthorized, "no_key");
        await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Get, "/v1/account", "dmk_" + new string('A', 43)), HttpStatusCode.Unauthorized, "unknown_key");
        await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Get, "/v1/account", "Bearer-less"), HttpStatusCode.Unauthorized, "unknown_key");
        await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Get, "/v1/account", "dmo_not-the-operator"), HttpStatusCode.Unauthorized, "unknown_key");
        await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Post, "/v1/buyers", key, new { name = "x" }), HttpStatusCode.Forbidden, "wrong_role");
        await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Get, "/v1/account", _market.OperatorKey), HttpStatusCode.Forbidden, "wrong_role");

        // A second key works alongside the first; revoking the first stops it at once and leaves the second working.
        var issued = await (await _market.SendAsync(HttpMethod.Post, "/v1/account/keys", key, new { label = "ci" })).Content.ReadFromJsonAsync<IssuedKey>(ServiceDefaults.WireJson);
        var first = (await _market.AccountAsync(key)).Keys.Single(k => k.Id != issued!.Key.Id);
        Assert.Equal(HttpStatusCode.OK, (await _market.SendAsync(HttpMethod.Delete, $"/v1/account/keys/{first.Id}", issued!.ApiKey)).StatusCode);
        await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Get, "/v1/account", key), HttpStatusCode.Unauthorized, "revoked_key");
        Assert.Equal(buyer, (await _market.AccountAsync(issued.ApiKey)).Id);

        // Only hashes are stored.
        await using var session = _market.Host.Store.QuerySession();
        var stored = await session.Query<BuyerKey>().Where(k => k.BuyerId == buyer).ToListAsync();
        Assert.Equal(2, stored.Count);
        Assert.DoesNotContain(stored, k => k.Hash.Contains(key[4..], StringComparison.Ordinal) || k.Hash == key);
        Assert.Equal(ApiKeys.Hash(issued.ApiKey), stored.Single(k => k.Id == issued.Key.Id).Hash);
    }

    [Fact]
    public async Task Grant_PricedAboveTheBalance_IsRefusedAndNothingIsSpent()
    {
        var (_, key) = await _market.CreateBuyerAsync(credits: 99);
        var response = await _market.SendAsync(HttpMethod.Post, "/v1/grants", key, GrantBody(rowQuota: 100));
        await MarketTestHost.AssertProblemAsync(response, HttpStatusCode.PaymentRequired, "insufficient_credit");
        var account = await _market.AccountAsync(key);
        Assert.Equal(99, account.Balance);
        Assert.Empty(account.Grants);
    }

    [Fact]
    public async Task Grants_BoughtConcurrently_NeverSpendMoreThanTheBalance()
    {
        var (_, key) = await _market.CreateBuyerAsync(credits: 300);
        var responses = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => _market.SendAsync(HttpMethod.Post, "/v1/grants", key, GrantBody(rowQuota: 100))));
        Assert.Equal(3, responses.Count(r => r.StatusCode == HttpStatusCode.Created));
        Assert.Equal(3, responses.Count(r => r.StatusCode == HttpStatusCode.PaymentRequired));
        var account = await _market.AccountAsync(key);
        Assert.Equal(0, account.Balance);
        Assert.Equal(3, account.Grants.Count);
    }

    [Fact]
    public async Task PaymentReceived_AppendedAgainByTheChainFollower_IsRefusedAndCountsAsCreditsOnce()
    {
        var (buyer, key) = await _market.CreateBuyerAsync(credits: 0);
        var payment = new PaymentReceived(buyer, 31337, "0x" + new string('a', 64), 3, "0x" + new string('b', 40), "5000000000000000000", 500, 12);
        await using (var session = _market.Host.Store.LightweightSession())
        {
            session.Events.Append(buyer, payment);
            await session.SaveChangesAsync();
        }
        // Followed again (a restart before its cursor moved), alone or beside another event: the append fails whole.
        await using (var again = _market.Host.Store.LightweightSession())
        {
            again.Events.Append(buyer, new CreditsAdded(buyer, 7, "beside the replay", DateTimeOffset.UtcNow), payment);
            await Assert.ThrowsAnyAsync<Exception>(() => again.SaveChangesAsync());
        }
        await using (var twice = _market.Host.Store.LightweightSession())
        {
            var other = payment with { LogIndex = 4 };
            twice.Events.Append(buyer, other, other);
            await Assert.ThrowsAnyAsync<Exception>(() => twice.SaveChangesAsync());
        }
        Assert.Equal(500, (await _market.AccountAsync(key)).Balance);
        Assert.Equal(HttpStatusCode.Created, (await _market.SendAsync(HttpMethod.Post, "/v1/grants", key, GrantBody(rowQuota: 500))).StatusCode);
    }

    [Fact]
    public async Task Query_OverAGrant_ReturnsExactlyItsRowsChargesThemAndAttributesEveryRowAndCredit()
    {
        var (buyer, key) = await _market.CreateBuyerAsync(credits: 1000);
        var devices = new[] { MarketLake.Devices[0], MarketLake.Devices[2] };
        var grant = await _market.BuyAsync(key, GrantBody(rowQuota: 1000, from: Nov23.AddHours(6), until: Nov23.AddHours(30), devices: devices));
        var expected = _market.Lake.Expected(new RowRestriction(Nov23.AddHours(6), Nov23.AddHours(30), null, devices));
        Assert.InRange(expected.Count, 100, 999);

        var response = await _market.SendAsync(HttpMethod.Post, "/v1/query", key, new { grant = grant.Id, sql = "SELECT reading_id, device FROM vehicle_signals ORDER BY event_seq" });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var rows = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(expected.Select(r => r.ReadingId), rows.EnumerateArray().Select(r => r.GetProperty("reading_id").GetString()));
        Assert.Equal($"{expected.Count}", Header(response, "X-Rows"));
        Assert.Equal($"{_market.Lake.Rows.Max(r => r.EventSeq)}", Header(response, MarketplaceEndpoints.LakeCheckpointHeader));

        // A credit per row (the price), so the charge is the rows; the attribution adds up to both, device by device.
        var account = await _market.AccountAsync(key);
        Assert.Equal(expected.Count, account.Grants.Single().RowsUsed);
        Assert.Equal(expected.Count, account.Grants.Single().CreditsUsed);
        var sold = await SoldAsync(buyer, Header(response, "X-Charge-Id")!);
        Assert.Equal(expected.Count, sold.Sum(s => s.Rows));
        Assert.Equal(expected.Count, sold.Sum(s => s.Credits));
        foreach (var device in devices)
            Assert.Equal(expected.Count(r => r.Device == device), sold.Where(s => s.Device == device).Sum(s => s.Rows));
        Assert.DoesNotContain(sold, s => s.Device == MarketLake.Devices[1]);
    }

    [Fact]
    public async Task Query_PastTheQuota_IsCutAtTheQuotaThenRefused()
    {
        var (_, key) = await _market.CreateBuyerAsync(credits: 100);
        var grant = await _market.BuyAsync(key, GrantBody(rowQuota: 25));
        var response = await _market.SendAsync(HttpMethod.Post, "/v1/query", key, new { grant = grant.Id, sql = "SELECT event_seq FROM vehicle_signals", format = "csv" });
        Assert.Equal("25", Header(response, "X-Rows"));
        Assert.Equal("true", Header(response, "X-Truncated"));
        Assert.Equal(26, (await response.Content.ReadAsStringAsync()).Split("\r\n", StringSplitOptions.RemoveEmptyEntries).Length);
        await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Post, "/v1/query", key, new { grant = grant.Id, sql = "SELECT 1" }), HttpStatusCode.Forbidden, "quota_exhausted");
        Assert.Equal(25, (await _market.AccountAsync(key)).Grants.Single().CreditsUsed);
    }

    [Fact]
    public async Task Query_AfterAnotherReplicaUsedTheQuotaAndSoldAGrant_RunsOnTheAccountAsStored_NotOnTheCopyThisOneRemembers()
    {
        var (_, key) = await _market.CreateBuyerAsync(credits: 1000);
        var grant = await _market.BuyAsync(key, GrantBody(rowQuota: 40));
        var query = new { grant = grant.Id, sql = "SELECT event_seq FROM vehicle_signals ORDER BY event_seq LIMIT 15" };
        // Charged here: this host remembers the account as that charge left it.
        Assert.Equal("15", Header(await _market.SendAsync(HttpMethod.Post, "/v1/query", key, query), "X-Rows"));
        // Another replica uses 15 more rows and sells another grant: the copy here is behind on both.
        await using var replica = await _market.StartReplicaAsync(fixture);
        Assert.Equal("15", Header(await _market.SendAsync(HttpMethod.Post, "/v1/query", key, query, replica.Api), "X-Rows"));
        var bought = await _market.SendAsync(HttpMethod.Post, "/v1/grants", key, GrantBody(rowQuota: 10), replica.Api);
        Assert.Equal(HttpStatusCode.Created, bought.StatusCode);
        var other = (await bought.Content.ReadFromJsonAsync<GrantView>(ServiceDefaults.WireJson))!;

        // The copy has 25 rows left, the account 10: the result is cut at 10, neither 15 delivered nor refused.
        var cut = await _market.SendAsync(HttpMethod.Post, "/v1/query", key, query);
        Assert.Equal(HttpStatusCode.OK, cut.StatusCode);
        Assert.Equal("10", Header(cut, "X-Rows"));
        Assert.Equal("true", Header(cut, "X-Truncated"));
        // The grant the copy does not know is found on the account.
        Assert.Equal("10", Header(await _market.SendAsync(HttpMethod.Post, "/v1/query", key, query with { grant = other.Id }), "X-Rows"));
        var account = await _market.AccountAsync(key);
        Assert.Equal(40, account.Grants.Single(g => g.Id == grant.Id).RowsUsed);
        Assert.Equal(10, account.Grants.Single(g => g.Id == other.Id).RowsUsed);
    }

    [Fact]
    public async Task Grant_WithAByteQuota_PaysItsMegabytesOnTopOfItsRows_MonthlyForASubscription()
    {
        var summary = await VehicleSummaryAsync();
        Assert.Equal((1000, 10_000), (summary.CreditsPerThousandRows, summary.CreditsPerMegabyte));
        var (_, key) = await _market.CreateBuyerAsync(credits: 100_000);

        // 1,000 rows at a credit each, and 0.05 MB (50,000 bytes) at 10,000 credits per MB: 1,000 + 500.
        var fixedRange = await _market.BuyAsync(key, GrantBody(rowQuota: 1000, until: Nov23.AddDays(2), byteQuotaMegabytes: 0.05m));
        Assert.Equal((1500L, 50_000L, 50_000L), (fixedRange.Credits, fixedRange.ByteQuota, fixedRange.BytesLeft));
        // A subscription pays both per started 30 days until it expires: 45 days are two months.
        var subscription = await _market.BuyAsync(key, new { dataset = "vehicle_signals", from = Nov23, rowQuota = 1000, byteQuotaMegabytes = 0.05m, expiresAt = DateTimeOffset.UtcNow.AddDays(45) });
        Assert.Equal(3000, subscription.Credits);
        // Without a byte quota, rows only, and no byte limit.
        var rowsOnly = await _market.BuyAsync(key, GrantBody(rowQuota: 1000));
        Assert.Equal((1000L, (long?)null, (long?)null), (rowsOnly.Credits, rowsOnly.ByteQuota, rowsOnly.BytesLeft));
        Assert.Equal(100_000 - 1500 - 3000 - 1000, (await _market.AccountAsync(key)).Balance);

        foreach (var megabytes in new[] { 0m, -1m, 0.0000001m, 2_000_000m })
            await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Post, "/v1/grants", key, GrantBody(rowQuota: 10, byteQuotaMegabytes: megabytes)), HttpStatusCode.BadRequest, "invalid_request");
        Assert.Equal(100_000 - 5500, (await _market.AccountAsync(key)).Balance);
    }

    [Fact]
    public async Task Query_PastTheByteQuota_IsRefusedSayingWhatToDo_AndNothingOfItIsDeliveredOrCharged()
    {
        var (_, key) = await _market.CreateBuyerAsync(credits: 10_000);
        // 2,000 bytes for 20 credits, beside 5,000 rows for 5,000.
        var grant = await _market.BuyAsync(key, GrantBody(rowQuota: 5000, byteQuotaMegabytes: 0.002m));
        Assert.Equal(5020, grant.Credits);

        var small = await _market.SendAsync(HttpMethod.Post, "/v1/query", key, new { grant = grant.Id, sql = "SELECT event_seq FROM vehicle_signals ORDER BY event_seq LIMIT 10", format = "csv" });
        Assert.Equal(HttpStatusCode.OK, small.StatusCode);
        var bytes = long.Parse(Header(small, "X-Bytes")!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(bytes, (await small.Content.ReadAsByteArrayAsync()).Length);
        // Each part is charged its share: 10 of 5,000 rows and bytes of 2,000 bytes, each of what it cost.
        var used = (await _market.AccountAsync(key)).Grants.Single();
        Assert.Equal((10L, bytes, 10 + bytes * 20 / 2000), (used.RowsUsed, used.BytesUsed, used.CreditsUsed));

        var large = await _market.SendAsync(HttpMethod.Post, "/v1/query", key, new { grant = grant.Id, sql = "SELECT * FROM vehicle_signals", format = "csv" });
        var problem = await MarketTestHost.AssertProblemAsync(large, HttpStatusCode.Forbidden, "byte_quota_exceeded");
        Assert.Contains("byteQuotaMegabytes", problem, StringComparison.Ordinal);
        Assert.Contains($"has {2000 - bytes} left", problem, StringComparison.Ordinal);
        var after = (await _market.AccountAsync(key)).Grants.Single();
        Assert.Equal((used.RowsUsed, used.BytesUsed, used.CreditsUsed), (after.RowsUsed, after.BytesUsed, after.CreditsUsed));

        // What fits the bytes left is still answered.
        Assert.Equal(HttpStatusCode.OK, (await _market.SendAsync(HttpMethod.Post, "/v1/query", key, new { grant = grant.Id, sql = "SELECT 1 AS one", format = "csv" })).StatusCode);
    }

    [Fact]
    public async Task ExportStatus_WithAWaitOutOfRange_IsRefused()
    {
        var (_, key) = await _market.CreateBuyerAsync(credits: 0);
        foreach (var wait in new[] { "-1", "61" })
            await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Get, $"/v1/exports/export_nope?wait={wait}", key), HttpStatusCode.BadRequest, "invalid_request");
        await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Get, "/v1/exports/export_nope?wait=soon", key), HttpStatusCode.BadRequest, "malformed");
    }

    [Fact]
    public async Task Export_PastTheByteQuota_FailsSayingSo_AndChargesNothing()
    {
        var (_, key) = await _market.CreateBuyerAsync(credits: 10_000);
        // 1,000 bytes: less than any Parquet file of the slice (a footer alone is more).
        var grant = await _market.BuyAsync(key, GrantBody(rowQuota: 2000, devices: [MarketLake.Devices[1]], byteQuotaMegabytes: 0.001m));
        var started = await _market.SendAsync(HttpMethod.Post, "/v1/exports", key, new { grant = grant.Id });
        Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);
        var id = (await started.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString()!;
        var job = await _market.FinishedExportAsync(key, id);

        Assert.Equal("failed", job.GetProperty("status").GetString());
        Assert.Contains("byteQuotaMegabytes", job.GetProperty("error").GetString(), StringComparison.Ordinal);
        await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Get, $"/v1/exports/{id}/manifest", key), HttpStatusCode.NotFound, "unknown_export");
        var after = (await _market.AccountAsync(key)).Grants.Single();
        Assert.Equal((0L, 0L, 0L), (after.RowsUsed, after.BytesUsed, after.CreditsUsed));
    }

    [Fact]
    public async Task Query_AsParquetByAccept_IsReadBackByAnIndependentReader()
    {
        var (_, key) = await _market.CreateBuyerAsync(credits: 5000);
        var grant = await _market.BuyAsync(key, GrantBody(rowQuota: 5000));
        using var request = new HttpRequestMessage(HttpMethod.Post, "/v1/query") { Content = JsonContent.Create(new { grant = grant.Id, sql = "SELECT event_seq, reading_id, speed_kmh FROM vehicle_signals ORDER BY event_seq" }) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        request.Headers.Accept.ParseAdd("application/vnd.apache.parquet");
        var response = await _market.Host.Api.SendAsync(request);
        Assert.Equal("application/vnd.apache.parquet", response.Content.Headers.ContentType?.MediaType);
        var read = await MarketLake.ReadParquetAsync(new MemoryStream(await response.Content.ReadAsByteArrayAsync()));
        // The grant covers the whole lake: all three days.
        Assert.Equal(_market.Lake.Rows.OrderBy(r => r.EventSeq).Select(r => (r.EventSeq, r.ReadingId, r.SpeedKmh)), read);

        await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Post, "/v1/query", key, new { grant = grant.Id, sql = "SELECT 1", format = "xml" }), HttpStatusCode.NotAcceptable, "not_acceptable");
    }

    [Fact]
    public async Task Export_OverHttp_IsSignedByTheMarketplaceMatchesItsDigestsAndIsChargedAndAttributed()
    {
        var (buyer, key) = await _market.CreateBuyerAsync(credits: 2000);
        var devices = new[] { MarketLake.Devices[1] };
        var grant = await _market.BuyAsync(key, GrantBody(rowQuota: 2000, devices: devices));
        var expected = _market.Lake.Rows.Where(r => r.Device == devices[0]).OrderBy(r => r.EventSeq).ToList();

        var started = await _market.SendAsync(HttpMethod.Post, "/v1/exports", key, new { grant = grant.Id, shards = 2 });
        Assert.Equal(HttpStatusCode.Accepted, started.StatusCode);
        var id = (await started.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("id").GetString()!;
        var job = await _market.FinishedExportAsync(key, id);
        Assert.True(job.GetProperty("status").GetString() == "done", job.ToString());

        var manifestText = await (await _market.SendAsync(HttpMethod.Get, $"/v1/exports/{id}/manifest", key)).Content.ReadAsStringAsync();
        var signature = await (await _market.SendAsync(HttpMethod.Get, $"/v1/exports/{id}/manifest.sig", key)).Content.ReadAsStringAsync();
        var signer = JsonDocument.Parse(await _market.Host.Api.GetStringAsync("/v1/marketplace")).RootElement.GetProperty("signer").GetString()!;
        Assert.Equal(signer.ToLowerInvariant(), RepositoryTools.EthersRecover(manifestText, signature));

        var manifest = JsonDocument.Parse(manifestText).RootElement;
        Assert.Equal(expected.Count, manifest.GetProperty("rows").GetInt64());
        var read = new List<(long Seq, string Id, double? Speed)>();
        foreach (var file in manifest.GetProperty("files").EnumerateArray())
        {
            var bytes = await (await _market.SendAsync(HttpMethod.Get, $"/v1/exports/{id}/files/{file.GetProperty("path").GetString()}", key)).Content.ReadAsByteArrayAsync();
            Assert.Equal(file.GetProperty("sha256").GetString(), Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes)));
            read.AddRange(await MarketLake.ReadParquetAsync(new MemoryStream(bytes)));
        }
        Assert.Equal(expected.Select(r => (r.EventSeq, r.ReadingId, r.SpeedKmh)), read.OrderBy(r => r.Seq));
        await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Get, $"/v1/exports/{id}/files/..%2F..%2Fjob.json", key), HttpStatusCode.NotFound, "unknown_file");

        // Another buyer sees nothing of it.
        var (_, otherKey) = await _market.CreateBuyerAsync(credits: 0);
        await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Get, $"/v1/exports/{id}/manifest", otherKey), HttpStatusCode.NotFound, "unknown_export");

        var account = await _market.AccountAsync(key);
        Assert.Equal(expected.Count, account.Grants.Single().RowsUsed);
        var sold = await SoldAsync(buyer, Assert.Single(await ChargesAsync(buyer)));
        Assert.Equal(expected.Count, sold.Sum(s => s.Rows));
        Assert.All(sold, s => Assert.Equal(devices[0], s.Device));
        Assert.Equal(account.Grants.Single().CreditsUsed, sold.Sum(s => s.Credits));
    }

    [Theory]
    [InlineData("SELECT * FROM read_csv('/etc/passwd')", "table_function")]
    [InlineData("SELECT * FROM '/etc/passwd'", "unknown_table")]
    [InlineData("SELECT * FROM read_parquet('{secret}')", "table_function")]
    [InlineData("SELECT * FROM weather_observations", "unknown_table")]
    [InlineData("COPY vehicle_signals TO '/tmp/stolen.csv'", "not_select")]
    [InlineData("ATTACH '/tmp/x.db'", "not_select")]
    [InlineData("INSTALL httpfs", "not_select")]
    [InlineData("SET enable_external_access = true", "not_select")]
    [InlineData("SELECT getenv('HOME')", "function_not_allowed")]
    [InlineData("SELECT * FROM duckdb_settings()", "table_function")]
    [InlineData("SELECT 1; SELECT 2", "multiple_statements")]
    [InlineData("SELECT count(*) FROM vehicle_signals a, vehicle_signals b, vehicle_signals c, vehicle_signals d", "timeout")]
    public async Task Query_SandboxEscapeThroughHttp_IsRefusedWithItsReasonAndCharged_Nothing(string sql, string reason)
    {
        var (_, key) = await _market.CreateBuyerAsync(credits: 100);
        var grant = await _market.BuyAsync(key, GrantBody(rowQuota: 100));
        var response = await _market.SendAsync(HttpMethod.Post, "/v1/query", key, new { grant = grant.Id, sql = sql.Replace("{secret}", _market.Lake.Secret, StringComparison.Ordinal) });
        var body = await MarketTestHost.AssertProblemAsync(response, reason == "timeout" ? HttpStatusCode.UnprocessableEntity : HttpStatusCode.BadRequest, reason);
        Assert.DoesNotContain("do not read", body, StringComparison.Ordinal);
        Assert.DoesNotContain("root:", body, StringComparison.Ordinal);
        Assert.Equal(0, (await _market.AccountAsync(key)).Grants.Single().RowsUsed);
    }

    [Theory]
    [InlineData("/v1/grants", "{not json")]
    [InlineData("/v1/grants", "{\"dataset\": 5}")]
    [InlineData("/v1/grants", "{\"dataset\": \"vehicle_signals\"}")]
    [InlineData("/v1/grants", "{\"dataset\": \"vehicle_signals\", \"from\": \"2026-11-23T00:00:00Z\", \"rowQuota\": -1, \"expiresAt\": \"2099-01-01T00:00:00Z\"}")]
    [InlineData("/v1/grants", "{\"dataset\": \"vehicle_signals\", \"from\": \"2026-11-23T00:00:00Z\", \"rowQuota\": 10, \"expiresAt\": \"2099-01-01T00:00:00Z\", \"box\": {\"south\": 91, \"west\": 0, \"north\": 0, \"east\": 0}}")]
    [InlineData("/v1/grants", "{\"dataset\": \"vehicle_signals\", \"from\": \"2026-11-23T00:00:00Z\", \"rowQuota\": 10, \"expiresAt\": \"2099-01-01T00:00:00Z\", \"devices\": [\"0x12'--\"]}")]
    [InlineData("/v1/grants", "{\"dataset\": \"vehicle_signals\", \"from\": \"2026-11-23T00:00:00Z\", \"rowQuota\": 99999999999999999999, \"expiresAt\": \"2099-01-01T00:00:00Z\"}")]
    [InlineData("/v1/query", "[]")]
    [InlineData("/v1/query", "{\"grant\": null, \"sql\": \"SELECT 1\"}")]
    [InlineData("/v1/query", "{\"grant\": \"grant_x\"}")]
    [InlineData("/v1/account/keys", "{\"label\": 7}")]
    public async Task MalformedBody_IsRefusedWithAReason_NeverA500(string path, string body)
    {
        var (_, key) = await _market.CreateBuyerAsync(credits: 0);
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        var response = await _market.Host.Api.SendAsync(request);
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement;
        Assert.True(problem.TryGetProperty("reason", out var reason), await response.Content.ReadAsStringAsync());
        Assert.False(string.IsNullOrEmpty(reason.GetString()));
    }

    [Fact]
    public async Task Contributor_LoggingInWithACastSignature_SeesTheirDevicesAndSales_AndAChallengeIsTradedOnceAndUnaltered()
    {
        var owner = Pipeline.Core.Crypto.EthKey.Generate();
        var device = Pipeline.Core.Crypto.EthKey.Generate();
        await Registration.RegisterAsync(_market.Host, device, owner: owner);
        var address = owner.Address.ToLowerHex();

        var challenge = await (await _market.SendAsync(HttpMethod.Post, "/v1/contributors/challenge", null, new { address })).Content.ReadFromJsonAsync<JsonElement>();
        var message = challenge.GetProperty("message").GetString()!;
        Assert.Contains(address, message, StringComparison.Ordinal);
        var signature = RepositoryTools.Run(RepositoryTools.Cast, ["wallet", "sign", "--private-key", owner.ToHex(), message]).Trim();
        var forged = RepositoryTools.Run(RepositoryTools.Cast, ["wallet", "sign", "--private-key", device.ToHex(), message]).Trim();

        await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Post, "/v1/contributors/session", null, new { message, signature = forged }), HttpStatusCode.Unauthorized, "bad_signature");
        // An altered challenge (a later expiry), even signed by the owner, is not the one the marketplace issued.
        var stretched = System.Text.RegularExpressions.Regex.Replace(message, "Expires: [^\n]+", $"Expires: {DateTime.UtcNow.AddDays(1):yyyy-MM-ddTHH:mm:ssZ}");
        Assert.NotEqual(message, stretched);
        var stretchedSignature = RepositoryTools.Run(RepositoryTools.Cast, ["wallet", "sign", "--private-key", owner.ToHex(), stretched]).Trim();
        await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Post, "/v1/contributors/session", null, new { message = stretched, signature = stretchedSignature }), HttpStatusCode.Unauthorized, "stale_challenge");
        // Refused attempts did not use the challenge: the owner's own signature trades it, once.
        var session = await (await _market.SendAsync(HttpMethod.Post, "/v1/contributors/session", null, new { message, signature })).Content.ReadFromJsonAsync<JsonElement>();
        var token = session.GetProperty("token").GetString()!;
        await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Post, "/v1/contributors/session", null, new { message, signature }), HttpStatusCode.Unauthorized, "stale_challenge");

        var devices = await (await _market.SendAsync(HttpMethod.Get, "/v1/contributor/devices", token)).Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal([device.Address.ToLowerHex()], devices.EnumerateArray().Select(d => d.GetProperty("id").GetString()));

        // Sales come from the lines of the charges' SalesAttributed of the devices the wallet owns, and of no other device; a sale
        // stored one per device (the first shape) counts as well.
        await using (var events = _market.Host.Store.LightweightSession())
        {
            events.Events.Append("0x" + new string('c', 64),
                new SalesAttributed("vehicle_signals", "grant_a", "charge_a", [new SoldRows(device.Address.ToLowerHex(), 5, 7, 3), new SoldRows(MarketLake.Devices[0], 5, 100, 50)]),
                new DataSold(device.Address.ToLowerHex(), 6, "vehicle_signals", 5, 2, "grant_a", "charge_b"));
            await events.SaveChangesAsync();
        }
        var sales = await (await _market.SendAsync(HttpMethod.Get, "/v1/contributor/sales", token)).Content.ReadFromJsonAsync<JsonElement>();
        var only = Assert.Single(sales.EnumerateArray());
        Assert.Equal(12, only.GetProperty("rows").GetInt64());
        Assert.Equal(5, only.GetProperty("credits").GetInt64());
        Assert.Equal(2, only.GetProperty("charges").GetInt64());

        await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Get, "/v1/account", token), HttpStatusCode.Forbidden, "wrong_role");
        await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Get, "/v1/contributor/devices", "dcs_forged"), HttpStatusCode.Unauthorized, "unknown_key");
    }

    [Fact]
    public async Task ContributorSession_KeptHashedInTheDatabase_IsHonouredByAnotherReplica_AndEndsOnLogoutEverywhere()
    {
        var owner = Pipeline.Core.Crypto.EthKey.Generate();
        var address = owner.Address.ToLowerHex();
        // A second API process over the same database: what a replica, or this host after a restart, would be.
        await using var replica = await _market.StartReplicaAsync(fixture);

        async Task<string> LoginAsync(HttpClient challenger, HttpClient trader)
        {
            var challenge = await _market.SendAsync(HttpMethod.Post, "/v1/contributors/challenge", null, new { address }, challenger);
            var message = (await challenge.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("message").GetString()!;
            var signature = RepositoryTools.Run(RepositoryTools.Cast, ["wallet", "sign", "--private-key", owner.ToHex(), message]).Trim();
            var session = await _market.SendAsync(HttpMethod.Post, "/v1/contributors/session", null, new { message, signature }, trader);
            Assert.True(session.StatusCode == HttpStatusCode.OK, await session.Content.ReadAsStringAsync());
            // Used once, wherever it is traded next.
            await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Post, "/v1/contributors/session", null, new { message, signature }, challenger), HttpStatusCode.Unauthorized, "stale_challenge");
            return (await session.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("token").GetString()!;
        }
        var first = await LoginAsync(_market.Host.Api, replica.Api);

        // The same signed challenge sent to both replicas at once makes one session.
        var raced = (await (await _market.SendAsync(HttpMethod.Post, "/v1/contributors/challenge", null, new { address }, replica.Api)).Content.ReadFromJsonAsync<JsonElement>()).GetProperty("message").GetString()!;
        var racedSignature = RepositoryTools.Run(RepositoryTools.Cast, ["wallet", "sign", "--private-key", owner.ToHex(), raced]).Trim();
        var racing = await Task.WhenAll(new[] { _market.Host.Api, replica.Api, _market.Host.Api, replica.Api }
            .Select(api => _market.SendAsync(HttpMethod.Post, "/v1/contributors/session", null, new { message = raced, signature = racedSignature }, api)));
        Assert.Single(racing, r => r.StatusCode == HttpStatusCode.OK);
        foreach (var refused in racing.Where(r => r.StatusCode != HttpStatusCode.OK)) await MarketTestHost.AssertProblemAsync(refused, HttpStatusCode.Unauthorized, "stale_challenge");
        await _market.SendAsync(HttpMethod.Delete, "/v1/contributor/session", (await racing.Single(r => r.StatusCode == HttpStatusCode.OK).Content.ReadFromJsonAsync<JsonElement>()).GetProperty("token").GetString()!);

        var second = await LoginAsync(replica.Api, _market.Host.Api);
        foreach (var api in new[] { _market.Host.Api, replica.Api })
            foreach (var token in new[] { first, second })
                Assert.Equal(HttpStatusCode.OK, (await _market.SendAsync(HttpMethod.Get, "/v1/contributor/devices", token, api: api)).StatusCode);

        // The database holds each session's SHA-256 and no token.
        await using (var connection = new Npgsql.NpgsqlConnection(_market.Host.PostgresConnectionString))
        {
            await connection.OpenAsync();
            await using var stored = new Npgsql.NpgsqlCommand(
                $"SELECT count(*) FILTER (WHERE token_sha256 = ANY($1)), count(*) FILTER (WHERE s::text LIKE '%' || $2 || '%' OR s::text LIKE '%' || $3 || '%') FROM {_market.Host.Schema}.market_contributor_sessions s", connection);
            stored.Parameters.Add(new Npgsql.NpgsqlParameter { Value = new[] { ApiKeys.Hash(first), ApiKeys.Hash(second) } });
            stored.Parameters.Add(new Npgsql.NpgsqlParameter { Value = first });
            stored.Parameters.Add(new Npgsql.NpgsqlParameter { Value = second });
            await using var reader = await stored.ExecuteReaderAsync();
            await reader.ReadAsync();
            Assert.Equal((2L, 0L), (reader.GetInt64(0), reader.GetInt64(1)));
        }

        // Logging out on one replica ends the session on the other at once; everywhere ends the address's other sessions too.
        var ended = await _market.SendAsync(HttpMethod.Delete, "/v1/contributor/session", first, api: replica.Api);
        Assert.Equal(1, (await ended.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("sessions").GetInt32());
        await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Get, "/v1/contributor/devices", first), HttpStatusCode.Unauthorized, "unknown_key");
        Assert.Equal(HttpStatusCode.OK, (await _market.SendAsync(HttpMethod.Get, "/v1/contributor/devices", second)).StatusCode);
        var third = await LoginAsync(_market.Host.Api, _market.Host.Api);
        ended = await _market.SendAsync(HttpMethod.Delete, "/v1/contributor/session?everywhere=true", third);
        Assert.Equal(2, (await ended.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("sessions").GetInt32());
        foreach (var token in new[] { second, third })
            await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Get, "/v1/contributor/devices", token, api: replica.Api), HttpStatusCode.Unauthorized, "unknown_key");
    }

    [Fact]
    public async Task ContributorChallenges_AskedForInAFlood_StoreNothing_AndAnHonestContributorStillSignsIn_Issue13()
    {
        async Task<long> StoredChallengesAsync()
        {
            await using var connection = new Npgsql.NpgsqlConnection(_market.Host.PostgresConnectionString);
            await connection.OpenAsync();
            await using var count = new Npgsql.NpgsqlCommand($"SELECT count(*) FROM {_market.Host.Schema}.market_login_challenges", connection);
            return (long)(await count.ExecuteScalarAsync())!;
        }
        var before = await StoredChallengesAsync();
        // A flood from one client (within its rate limit here: what many addresses would do past it), for made-up addresses.
        var flood = await Task.WhenAll(Enumerable.Range(0, 8).Select(async _ =>
        {
            var statuses = new List<HttpStatusCode>();
            for (var i = 0; i < 100; i++)
                statuses.Add((await _market.SendAsync(HttpMethod.Post, "/v1/contributors/challenge", null, new { address = Pipeline.Core.Crypto.EthKey.Generate().Address.ToLowerHex() })).StatusCode);
            return statuses;
        }));
        Assert.All(flood.SelectMany(s => s), status => Assert.Equal(HttpStatusCode.OK, status));
        Assert.Equal(before, await StoredChallengesAsync());

        var owner = Pipeline.Core.Crypto.EthKey.Generate();
        var message = (await (await _market.SendAsync(HttpMethod.Post, "/v1/contributors/challenge", null, new { address = owner.Address.ToLowerHex() })).Content.ReadFromJsonAsync<JsonElement>()).GetProperty("message").GetString()!;
        var signature = RepositoryTools.Run(RepositoryTools.Cast, ["wallet", "sign", "--private-key", owner.ToHex(), message]).Trim();
        var session = await _market.SendAsync(HttpMethod.Post, "/v1/contributors/session", null, new { message, signature });
        Assert.True(session.StatusCode == HttpStatusCode.OK, await session.Content.ReadAsStringAsync());
        // Only the challenge traded is stored, to refuse it a second time.
        Assert.Equal(before + 1, await StoredChallengesAsync());
        await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Post, "/v1/contributors/session", null, new { message, signature }), HttpStatusCode.Unauthorized, "stale_challenge");
    }

    [Fact]
    public async Task RateLimit_PerKey_RefusesPastTheBurstWithRetryAfter_AndLeavesOtherKeysAlone()
    {
        await using var limited = await TestHost.StartAsync(fixture, Roles.Api, new Dictionary<string, string?>
        {
            ["Lake:Directory"] = _market.Lake.Root,
            ["Marketplace:OperatorKeyFile"] = _market.OperatorKeyFile,
            ["Marketplace:RequestsPerSecond"] = "1",
            ["Marketplace:RequestBurst"] = "3",
        }, schema: "it_market_api_limits");
        Task<HttpResponseMessage> SendLimited(HttpMethod method, string path, string key, object? body = null) => _market.SendAsync(method, path, key, body, limited.Api);
        var keys = new List<string>();
        for (var i = 0; i < 2; i++)
            keys.Add((await (await SendLimited(HttpMethod.Post, "/v1/buyers", _market.OperatorKey, new { name = $"buyer {i}" })).Content.ReadFromJsonAsync<CreatedBuyer>(ServiceDefaults.WireJson))!.ApiKey);

        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 6; i++) statuses.Add((await SendLimited(HttpMethod.Get, "/v1/account", keys[0])).StatusCode);
        Assert.Contains(HttpStatusCode.OK, statuses);
        Assert.Contains(HttpStatusCode.TooManyRequests, statuses);
        var refused = await SendLimited(HttpMethod.Get, "/v1/account", keys[0]);
        await MarketTestHost.AssertProblemAsync(refused, HttpStatusCode.TooManyRequests, "rate_limited");
        Assert.NotNull(refused.Headers.RetryAfter);
        // Another key has a bucket of its own.
        Assert.Equal(HttpStatusCode.OK, (await SendLimited(HttpMethod.Get, "/v1/account", keys[1])).StatusCode);
    }

    [Fact]
    public async Task Grant_PastItsExpiry_IsRefusedGrantExpiredForQueriesAndExports_AndChargesNothing()
    {
        var (_, key) = await _market.CreateBuyerAsync(credits: 100);
        var expiring = await _market.BuyAsync(key, new { dataset = "vehicle_signals", from = Nov23, rowQuota = 10, expiresAt = DateTimeOffset.UtcNow.AddSeconds(2) });
        // The host reads the same clock as the test (its TimeProvider is the system's): once the clock is past expiresAt,
        // it is for the host too.
        while (TimeProvider.System.GetUtcNow() <= expiring.ExpiresAt)
            await Task.Delay(expiring.ExpiresAt - TimeProvider.System.GetUtcNow() + TimeSpan.FromMilliseconds(1));

        await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Post, "/v1/query", key, new { grant = expiring.Id, sql = "SELECT count(*) FROM vehicle_signals" }),
            HttpStatusCode.Forbidden, "grant_expired");
        await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Post, "/v1/exports", key, new { grant = expiring.Id }), HttpStatusCode.Forbidden, "grant_expired");
        var grant = (await _market.AccountAsync(key)).Grants.Single();
        Assert.Equal((0, 0), (grant.RowsUsed, grant.CreditsUsed));

        // The same query on a grant that has not expired is answered: the refusal was the expiry's.
        var live = await _market.BuyAsync(key, GrantBody(rowQuota: 10));
        Assert.Equal(HttpStatusCode.OK, (await _market.SendAsync(HttpMethod.Post, "/v1/query", key, new { grant = live.Id, sql = "SELECT count(*) FROM vehicle_signals" })).StatusCode);
    }

    [Fact]
    public async Task ProblemPages_ExplainEveryReasonTheMarketplaceAnswers()
    {
        var reasons = new[] { typeof(MarketReason), typeof(SandboxReason) }
            .SelectMany(t => t.GetFields().Where(f => f.IsLiteral).Select(f => (string)f.GetRawConstantValue()!))
            .Append("malformed").Append("too_large") // bodies the framework refuses
            .ToList();
        Assert.Contains("grant_expired", reasons);
        foreach (var reason in reasons)
        {
            var response = await _market.Host.Api.GetAsync($"/problems/{reason}");
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"/problems/{reason} answered {response.StatusCode}.");
            var page = await response.Content.ReadFromJsonAsync<ProblemExplanation>(ServiceDefaults.WireJson);
            Assert.Equal(reason, page!.Reason);
            Assert.False(string.IsNullOrWhiteSpace(page.Description), reason);
            if (MarketProblems.Explanations.SingleOrDefault(e => e.Reason == reason) is { } own) Assert.Equal(own, page);
        }
        // Every explanation is of a reason the marketplace has, and says the status the sandbox's refusals come with.
        Assert.All(MarketProblems.Explanations, e => Assert.Contains(e.Reason, reasons));
        Assert.All(MarketProblems.Explanations.Where(e => typeof(SandboxReason).GetFields().Any(f => (string)f.GetRawConstantValue()! == e.Reason)),
            e => Assert.Equal(MarketProblems.SandboxStatus(e.Reason), e.Status));
        // A reason used by the core list as well keeps the core's explanation.
        Assert.Equal(429, (await _market.Host.Api.GetFromJsonAsync<ProblemExplanation>("/problems/rate_limited", ServiceDefaults.WireJson))!.Status);
    }

    [Fact]
    public async Task ContributorSales_AreSummedThroughThePartialIndexesOfSales_NotAScanOfEveryEvent()
    {
        await using var connection = new Npgsql.NpgsqlConnection(_market.Host.PostgresConnectionString);
        await connection.OpenAsync();
        await using (var exists = new Npgsql.NpgsqlCommand("SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND indexname = $2", connection))
        {
            exists.Parameters.Add(new Npgsql.NpgsqlParameter { Value = _market.Host.Schema });
            exists.Parameters.Add(new Npgsql.NpgsqlParameter { Value = Pipeline.Marketplace.Contributors.SalesByDeviceIndex.Name });
            var definition = (string?)await exists.ExecuteScalarAsync();
            Assert.NotNull(definition);
            Assert.Contains("sales_attributed.v1", definition, StringComparison.Ordinal);
        }
        // The test's table is small enough for a scan to be cheaper; forbidding scans shows the query can use the index at
        // all (its expressions and predicate match), which is what keeps it fast when mt_events holds millions of readings.
        await using (var off = new Npgsql.NpgsqlCommand("SET enable_seqscan = off", connection)) await off.ExecuteNonQueryAsync();
        await using var explain = new Npgsql.NpgsqlCommand("EXPLAIN " + Pipeline.Marketplace.Contributors.ContributorData.SalesSql(_market.Host.Schema), connection);
        explain.Parameters.Add(new Npgsql.NpgsqlParameter { Value = new[] { MarketLake.Devices[0] } });
        var plan = new List<string>();
        await using (var reader = await explain.ExecuteReaderAsync()) while (await reader.ReadAsync()) plan.Add(reader.GetString(0));
        Assert.Contains(plan, line => line.Contains(Pipeline.Marketplace.Contributors.SalesByDeviceIndex.Name, StringComparison.Ordinal));
        Assert.Contains(plan, line => line.Contains(Pipeline.Marketplace.Contributors.SalesByDeviceIndex.V1Name, StringComparison.Ordinal));
    }

    [Fact]
    public async Task BuyerKeyLookup_UsesTheIndexOfTheKeys_AndNoIndexOfTheWholeAccount()
    {
        await using var connection = new Npgsql.NpgsqlConnection(_market.Host.PostgresConnectionString);
        await connection.OpenAsync();
        // A charge rewrites the account: an index of anything in its document would take a new entry each time, and
        // keep PostgreSQL from updating the row in place (HOT) — issue 13. Its id is all it is indexed by.
        Assert.Equal(["id"], await IndexedColumnsAsync(connection, "mt_doc_buyeraccount"));

        // The key look-up as the authentication handler sends it: one index read; scans forbidden, as the test's table is small.
        await using var session = _market.Host.App.Services.GetRequiredService<IDocumentStore>().QuerySession();
        var lookup = session.Query<BuyerKey>().Where(k => k.Hash == "00").ToCommand();
        await using (var off = new Npgsql.NpgsqlCommand("SET enable_seqscan = off", connection)) await off.ExecuteNonQueryAsync();
        await using var explain = new Npgsql.NpgsqlCommand("EXPLAIN " + lookup.CommandText, connection);
        foreach (Npgsql.NpgsqlParameter parameter in lookup.Parameters) explain.Parameters.Add(parameter.Clone());
        var plan = new List<string>();
        await using (var reader = await explain.ExecuteReaderAsync()) while (await reader.ReadAsync()) plan.Add(reader.GetString(0));
        Assert.Contains(plan, line => line.Contains("Index Scan", StringComparison.Ordinal) && line.Contains("hash", StringComparison.Ordinal) && line.Contains("mt_doc_buyerkey", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Keys_PastTheLiveLimit_AreRefusedUntilOneIsRevoked()
    {
        var (buyer, key) = await _market.CreateBuyerAsync(credits: 0);
        async Task<HttpResponseMessage> IssueAsync(string by, string path) => await _market.SendAsync(HttpMethod.Post, path, by, new { label = "spare" });
        // The first key came with the account; the buyer and the operator issue the rest.
        for (var i = 1; i < MarketAccounts.MaxLiveKeys; i++)
            Assert.Equal(HttpStatusCode.OK, (await IssueAsync(i % 2 == 0 ? key : _market.OperatorKey, i % 2 == 0 ? "/v1/account/keys" : $"/v1/buyers/{buyer}/keys")).StatusCode);
        await MarketTestHost.AssertProblemAsync(await IssueAsync(key, "/v1/account/keys"), HttpStatusCode.Conflict, "too_many_keys");
        await MarketTestHost.AssertProblemAsync(await IssueAsync(_market.OperatorKey, $"/v1/buyers/{buyer}/keys"), HttpStatusCode.Conflict, "too_many_keys");
        var keys = (await _market.AccountAsync(key)).Keys;
        Assert.Equal(MarketAccounts.MaxLiveKeys, keys.Count);

        // A revoked key no longer counts: one more may be issued, and the limit holds again after it.
        Assert.Equal(HttpStatusCode.OK, (await _market.SendAsync(HttpMethod.Delete, $"/v1/account/keys/{keys[^1].Id}", key)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await IssueAsync(key, "/v1/account/keys")).StatusCode);
        await MarketTestHost.AssertProblemAsync(await IssueAsync(key, "/v1/account/keys"), HttpStatusCode.Conflict, "too_many_keys");
    }

    [Fact]
    public async Task Account_StoredAsBeforeIssue13_IsMovedAtTheNextStart_ItsKeysOpenItAsBeforeAndItsPaymentCountsOnce_Issue13()
    {
        var (buyer, key) = await _market.CreateBuyerAsync(credits: 10);
        async Task<IssuedKey> IssueAsync(string label) =>
            (await (await _market.SendAsync(HttpMethod.Post, $"/v1/buyers/{buyer}/keys", _market.OperatorKey, new { label })).Content.ReadFromJsonAsync<IssuedKey>(ServiceDefaults.WireJson))!;
        var unused = await IssueAsync("never used before the move");
        var revoked = await IssueAsync("revoked");
        Assert.Equal(HttpStatusCode.OK, (await _market.SendAsync(HttpMethod.Delete, $"/v1/buyers/{buyer}/keys/{revoked.Key.Id}", _market.OperatorKey)).StatusCode);
        var payment = new PaymentReceived(buyer, 31337, "0x" + new string('c', 64), 0, "0x" + new string('b', 40), "5000000000000000000", 500, 12);
        await using (var session = _market.Host.Store.LightweightSession())
        {
            session.Events.Append(buyer, payment);
            await session.SaveChangesAsync();
        }

        // The account as it was stored before: keys and payments inside its document, none of their own, and its index of the keys.
        var schema = _market.Host.Schema;
        List<BuyerKey> keys;
        await using (var query = _market.Host.Store.QuerySession()) keys = (await query.Query<BuyerKey>().Where(k => k.BuyerId == buyer).ToListAsync()).ToList();
        var oldKeys = JsonSerializer.Serialize(keys.Select(k => new { id = k.Id, hash = k.Hash, label = k.Label, issuedAt = k.IssuedAt, revokedAt = k.RevokedAt }));
        var oldPayments = JsonSerializer.Serialize(new[] { CountedPayment.Key(payment.ChainId, payment.TxHash, payment.LogIndex) });
        await using var connection = new Npgsql.NpgsqlConnection(_market.Host.PostgresConnectionString);
        await connection.OpenAsync();
        async Task ExecuteAsync(string sql, params object[] values)
        {
            await using var command = new Npgsql.NpgsqlCommand(sql, connection);
            foreach (var value in values) command.Parameters.Add(new Npgsql.NpgsqlParameter { Value = value });
            await command.ExecuteNonQueryAsync();
        }
        await ExecuteAsync($"DELETE FROM {schema}.mt_doc_buyerkey WHERE data ->> 'buyerId' = $1", buyer);
        await ExecuteAsync($"DELETE FROM {schema}.mt_doc_countedpayment WHERE data ->> 'buyerId' = $1", buyer);
        await ExecuteAsync($"UPDATE {schema}.mt_doc_buyeraccount SET data = (data - 'liveKeys') || jsonb_build_object('keys', $2::jsonb, 'payments', $3::jsonb) WHERE id = $1", buyer, oldKeys, oldPayments);
        await ExecuteAsync($"CREATE INDEX IF NOT EXISTS mt_doc_buyeraccount_idx_keys ON {schema}.mt_doc_buyeraccount USING gin ((data -> 'keys') jsonb_path_ops)");

        await using var restarted = await _market.StartReplicaAsync(fixture);

        var opened = await _market.SendAsync(HttpMethod.Get, "/v1/account", unused.ApiKey, api: restarted.Api);
        Assert.True(opened.StatusCode == HttpStatusCode.OK, await opened.Content.ReadAsStringAsync());
        var account = (await opened.Content.ReadFromJsonAsync<AccountView>(ServiceDefaults.WireJson))!;
        Assert.Equal((buyer, 510L), (account.Id, account.Balance));
        Assert.Equal(keys.Select(k => (k.Id, k.RevokedAt is null)).Order(), account.Keys.Select(k => (k.Id, k.RevokedAt is null)).Order());
        Assert.Equal(HttpStatusCode.OK, (await _market.SendAsync(HttpMethod.Get, "/v1/account", key, api: restarted.Api)).StatusCode);
        await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Get, "/v1/account", revoked.ApiKey, api: restarted.Api), HttpStatusCode.Unauthorized, "revoked_key");

        await using (var moved = new Npgsql.NpgsqlCommand($"SELECT data ? 'keys' OR data ? 'payments', data -> 'liveKeys' FROM {schema}.mt_doc_buyeraccount WHERE id = $1", connection))
        {
            moved.Parameters.Add(new Npgsql.NpgsqlParameter { Value = buyer });
            await using var reader = await moved.ExecuteReaderAsync();
            Assert.True(await reader.ReadAsync());
            Assert.False(reader.GetBoolean(0));
            Assert.Equal(keys.Where(k => k.RevokedAt is null).Select(k => k.Id).Order(), JsonSerializer.Deserialize<string[]>(reader.GetString(1))!.Order());
        }
        Assert.Equal(["id"], await IndexedColumnsAsync(connection, "mt_doc_buyeraccount"));
        await using (var again = _market.Host.Store.LightweightSession())
        {
            again.Events.Append(buyer, payment);
            await Assert.ThrowsAnyAsync<Exception>(() => again.SaveChangesAsync());
        }
        Assert.Equal(510, (await _market.AccountAsync(key)).Balance);
    }

    /// <summary>What the indexes of a table of the test's schema index: a column's name, or "expression".</summary>
    private async Task<List<string>> IndexedColumnsAsync(Npgsql.NpgsqlConnection connection, string table)
    {
        await using var list = new Npgsql.NpgsqlCommand(
            "SELECT coalesce(a.attname, 'expression') FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid CROSS JOIN unnest(i.indkey) k(attnum) " +
            "LEFT JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum WHERE t.relnamespace = $1::regnamespace AND t.relname = $2", connection);
        list.Parameters.Add(new Npgsql.NpgsqlParameter { Value = _market.Host.Schema });
        list.Parameters.Add(new Npgsql.NpgsqlParameter { Value = table });
        var columns = new List<string>();
        await using var reader = await list.ExecuteReaderAsync();
        while (await reader.ReadAsync()) columns.Add(reader.GetString(0));
        return columns;
    }

    [Fact]
    public async Task Schema_AppliedAgainByASecondStart_FindsNothingToChange_AndKeepsTheSalesIndexes_Issue16()
    {
        await using var connection = new Npgsql.NpgsqlConnection(_market.Host.PostgresConnectionString);
        await connection.OpenAsync();
        async Task<string?> IndexOidsAsync()
        {
            // The indexes as objects: dropped and created again, they would have new oids.
            await using var oids = new Npgsql.NpgsqlCommand(
                $"SELECT string_agg(c.oid::text, ',' ORDER BY c.relname) FROM pg_class c WHERE c.relnamespace = '{_market.Host.Schema}'::regnamespace AND c.relname IN ($1, $2)", connection);
            oids.Parameters.Add(new Npgsql.NpgsqlParameter { Value = Pipeline.Marketplace.Contributors.SalesByDeviceIndex.Name });
            oids.Parameters.Add(new Npgsql.NpgsqlParameter { Value = Pipeline.Marketplace.Contributors.SalesByDeviceIndex.V1Name });
            return (string?)await oids.ExecuteScalarAsync();
        }
        var before = await IndexOidsAsync();
        Assert.Equal(2, before!.Split(',').Length);

        // What the first start applied is what the configuration asks for: the store's own objects and the sales indexes.
        Assert.Equal(Weasel.Core.SchemaPatchDifference.None, (await _market.Host.Store.Storage.Database.CreateMigrationAsync()).Difference);
        var sales = new Pipeline.Marketplace.Contributors.SalesByDeviceIndex(_market.Host.Schema);
        Assert.Equal(Weasel.Core.SchemaPatchDifference.None, (await Weasel.Core.SchemaMigration.DetermineAsync(connection, sales)).Difference);

        // A second start (as `depin api` again on the same database) drops and creates nothing: the same index objects.
        await using (await _market.StartReplicaAsync(fixture)) { }
        Assert.Equal(before, await IndexOidsAsync());
    }

    [Fact]
    public async Task Query_AsOfAnEarlierCheckpoint_ReadsTheLakeAsItWasThen_AfterMoreRowsAndCompaction_UntilRetentionEnds()
    {
        var (_, key) = await _market.CreateBuyerAsync(credits: 100_000);
        var grant = await _market.BuyAsync(key, GrantBody(rowQuota: 50_000));
        const string sql = "SELECT device, count(*) AS readings, sum(speed_kmh) AS speed FROM vehicle_signals GROUP BY device ORDER BY device";
        var first = await _market.SendAsync(HttpMethod.Post, "/v1/query", key, new { grant = grant.Id, sql, format = "csv" });
        var checkpoint = long.Parse(Header(first, MarketplaceEndpoints.LakeCheckpointHeader)!, System.Globalization.CultureInfo.InvariantCulture);
        var then = await first.Content.ReadAsStringAsync();

        await _market.Lake.ProjectAsync(_market.Host, rows: 300);
        await _market.Lake.CompactSecondDayAsync(_market.Host);
        var now = await _market.SendAsync(HttpMethod.Post, "/v1/query", key, new { grant = grant.Id, sql, format = "csv" });
        Assert.NotEqual(then, await now.Content.ReadAsStringAsync());

        var again = await _market.SendAsync(HttpMethod.Post, "/v1/query", key, new { grant = grant.Id, sql, format = "csv", asOf = checkpoint });
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Equal(then, await again.Content.ReadAsStringAsync());
        Assert.Equal($"{checkpoint}", Header(again, MarketplaceEndpoints.LakeCheckpointHeader));

        await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Post, "/v1/query", key, new { grant = grant.Id, sql, asOf = checkpoint + 1_000_000 }), HttpStatusCode.BadRequest, "invalid_request");
        // Retention over: the replaced files are forgotten, and the snapshots that needed them with them.
        Assert.NotEmpty(await _market.Host.Lake.Manifest(Pipeline.Projections.Lake.LakeProjector.LiveLake).ExpireAsync(TimeSpan.Zero, CancellationToken.None));
        await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Post, "/v1/query", key, new { grant = grant.Id, sql, asOf = checkpoint }), HttpStatusCode.Gone, "snapshot_expired");
    }

    [Fact]
    public async Task Query_RowsCarryingDeviceAndTime_AreAttributedToTheirOwnDevices_AndMadeUpNamesToTheSlice()
    {
        var (buyer, key) = await _market.CreateBuyerAsync(credits: 10_000);
        var grant = await _market.BuyAsync(key, GrantBody(rowQuota: 5_000));
        var device = MarketLake.Devices[1];
        var own = await _market.SendAsync(HttpMethod.Post, "/v1/query", key, new { grant = grant.Id, sql = $"SELECT device, device_time FROM vehicle_signals WHERE device = '{device}' LIMIT 50" });
        Assert.Equal("50", Header(own, "X-Rows"));
        var sold = await SoldAsync(buyer, Header(own, "X-Charge-Id")!);
        Assert.Equal(50, sold.Where(s => s.Device == device).Sum(s => s.Rows));
        Assert.Equal(50, sold.Sum(s => s.Rows));

        // A name the query made up cannot steer the sale: the rows are attributed over the grant's slice instead.
        const string madeUp = "0x00000000000000000000000000000000000000ee";
        var forged = await _market.SendAsync(HttpMethod.Post, "/v1/query", key, new { grant = grant.Id, sql = $"SELECT '{madeUp}' AS device, device_time FROM vehicle_signals LIMIT 30" });
        Assert.Equal("30", Header(forged, "X-Rows"));
        sold = await SoldAsync(buyer, Header(forged, "X-Charge-Id")!);
        Assert.DoesNotContain(sold, s => s.Device == madeUp);
        Assert.Equal(30, sold.Sum(s => s.Rows));
        Assert.All(sold, s => Assert.Contains(s.Device, MarketLake.Devices));

        // Nor can a real device of the slice, named by a query whose rows are not the view's one for one (DISTINCT): the
        // other devices' rows it delivered are not sold as that device's.
        var steered = await _market.SendAsync(HttpMethod.Post, "/v1/query", key, new { grant = grant.Id, sql = $"SELECT DISTINCT '{device}' AS device, device_time FROM vehicle_signals WHERE device <> '{device}' LIMIT 40" });
        Assert.Equal("40", Header(steered, "X-Rows"));
        sold = await SoldAsync(buyer, Header(steered, "X-Charge-Id")!);
        Assert.Equal(40, sold.Sum(s => s.Rows));
        Assert.True(sold.Where(s => s.Device == device).Sum(s => s.Rows) < 40, "the rows are attributed over the slice's devices, not to the device the query named");
    }

    /// <summary>The lines of the charge's sale, which is one event whatever the number of devices and epochs it sold.</summary>
    private async Task<IReadOnlyList<SoldRows>> SoldAsync(string buyer, string chargeId)
    {
        await using var session = _market.Host.Store.QuerySession();
        var events = (await session.Events.QueryAllRawEvents().Where(e => e.StreamKey == buyer).ToListAsync()).Select(e => e.Data).ToList();
        Assert.Empty(events.OfType<DataSold>());
        return Assert.Single(events.OfType<SalesAttributed>(), s => s.ChargeId == chargeId).Lines;
    }

    private async Task<IReadOnlyList<string>> ChargesAsync(string buyer)
    {
        await using var session = _market.Host.Store.QuerySession();
        return (await session.Events.QueryAllRawEvents().Where(e => e.StreamKey == buyer).ToListAsync()).Select(e => e.Data).OfType<SalesAttributed>().Select(s => s.ChargeId).ToList();
    }

    [Fact]
    public async Task Sales_StoredInBothShapes_AreSummedAlikeByContributorsAndTheRewardsStage_Issue13()
    {
        // A running network holds sales as first written, one event per device and epoch (data_sold.v1, and Marten keeps
        // the CLR name beside it); charges since write one event with lines. Both are read, by the SQL and by the events.
        var buyer = "0x" + Convert.ToHexStringLower(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32));
        var (first, second) = ("0x" + new string('1', 40), "0x" + new string('2', 40));
        await using (var events = _market.Host.Store.LightweightSession())
        {
            events.Events.Append(buyer,
                new DataSold(first, 7, "vehicle_signals", 11, 4, "grant_old", "charge_old"),
                new DataSold(second, 7, "vehicle_signals", 3, 1, "grant_old", "charge_old"),
                new SalesAttributed("vehicle_signals", "grant_new", "charge_new", [new SoldRows(first, 8, 5, 2), new SoldRows(first, 9, 1, 0), new SoldRows(second, 8, 20, 9)]));
            await events.SaveChangesAsync();
        }
        await using var connection = new Npgsql.NpgsqlConnection(_market.Host.PostgresConnectionString);
        await connection.OpenAsync();
        await using (var stored = new Npgsql.NpgsqlCommand($"SELECT DISTINCT mt_dotnet_type FROM {_market.Host.Schema}.mt_events WHERE stream_id = $1 AND type = 'data_sold.v1'", connection))
        {
            stored.Parameters.Add(new Npgsql.NpgsqlParameter { Value = buyer });
            Assert.Equal("Pipeline.Core.Events.DataSold, Pipeline.Core", await stored.ExecuteScalarAsync());
        }

        await using (var sales = new Npgsql.NpgsqlCommand(Pipeline.Marketplace.Contributors.ContributorData.SalesSql(_market.Host.Schema), connection))
        {
            sales.Parameters.Add(new Npgsql.NpgsqlParameter { Value = new[] { first, second } });
            var summed = new List<(string, string, long, long, long)>();
            await using var reader = await sales.ExecuteReaderAsync();
            while (await reader.ReadAsync()) summed.Add((reader.GetString(0), reader.GetString(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4)));
            Assert.Equal([(first, "vehicle_signals", 17L, 6L, 2L), (second, "vehicle_signals", 23L, 10L, 2L)], summed);
        }

        IReadOnlyList<JasperFx.Events.IEvent> appended;
        await using (var session = _market.Host.Store.QuerySession())
            appended = await session.Events.FetchStreamAsync(buyer);
        Assert.Equal(2, appended.Select(e => e.Data).OfType<DataSold>().Count());
        Assert.Single(appended.Select(e => e.Data).OfType<SalesAttributed>());
        // The rewards stage reads the sales recorded in a range of sequence numbers: exactly those of this stream here.
        var rewarded = await _market.Host.Create<Pipeline.Rewards.Stage.EpochInputsReader>().SalesAsync(appended.Min(e => e.Sequence) - 1, appended.Max(e => e.Sequence), CancellationToken.None);
        Assert.Equal([(first, 17L, 6L), (second, 23L, 10L)], rewarded.Select(s => (s.Device.ToLowerHex(), s.Rows, s.Credits)).OrderBy(s => s.Item1));
    }

    [Fact]
    public async Task Query_UnknownGrant_IsNotFound()
    {
        var (_, key) = await _market.CreateBuyerAsync(credits: 0);
        await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Post, "/v1/query", key, new { grant = "grant_nope", sql = "SELECT 1" }), HttpStatusCode.NotFound, "unknown_grant");
    }

    [Fact]
    public async Task OpenApi_DocumentsEveryMarketplaceEndpoint()
    {
        var document = JsonDocument.Parse(await _market.Host.Api.GetStringAsync("/openapi/v1.json")).RootElement.GetProperty("paths");
        foreach (var path in new[] { "/v1/datasets", "/v1/datasets/{name}", "/v1/datasets/{name}/preview", "/v1/buyers", "/v1/buyers/{buyerId}", "/v1/buyers/{buyerId}/credits",
                     "/v1/buyers/{buyerId}/keys", "/v1/buyers/{buyerId}/keys/{keyId}", "/v1/account", "/v1/account/keys", "/v1/account/keys/{keyId}", "/v1/grants", "/v1/grants/{grantId}", "/v1/query", "/v1/marketplace",
                     "/v1/exports", "/v1/exports/{exportId}", "/v1/exports/{exportId}/manifest", "/v1/exports/{exportId}/manifest.sig", "/v1/exports/{exportId}/files/{path}",
                     "/v1/contributors/challenge", "/v1/contributors/session", "/v1/contributor/devices", "/v1/contributor/sales", "/v1/contributor/session", "/v1/grants/{grantId}/feed" })
            Assert.True(document.TryGetProperty(path, out _), $"{path} is not in the OpenAPI document.");
    }

    /// <summary>Every problem status each route can answer (besides the group's 400 and 429), as read from its code; issue 13 found the downloads' 503 missing.</summary>
    private static readonly (string Method, string Path, int[] Statuses)[] RouteProblems =
    [
        ("get", "/v1/datasets/{name}", [404]),
        ("get", "/v1/datasets/{name}/preview", [404]),
        ("get", "/v1/datasets/{name}/series", [404]),
        ("post", "/v1/buyers", [401, 403, 413]),
        ("get", "/v1/buyers/{buyerId}", [401, 403, 404]),
        ("post", "/v1/buyers/{buyerId}/credits", [401, 403, 404, 413]),
        ("post", "/v1/buyers/{buyerId}/keys", [401, 403, 404, 409, 413]),
        ("delete", "/v1/buyers/{buyerId}/keys/{keyId}", [401, 403, 404]),
        ("get", "/v1/account", [401, 403, 404]),
        ("post", "/v1/account/keys", [401, 403, 404, 409, 413]),
        ("delete", "/v1/account/keys/{keyId}", [401, 403, 404]),
        ("post", "/v1/grants", [401, 402, 403, 404, 413]),
        ("get", "/v1/grants/{grantId}", [401, 403, 404]),
        ("get", "/v1/grants/{grantId}/feed", [401, 403, 404, 409]),
        ("post", "/v1/query", [401, 403, 404, 406, 409, 410, 413, 422]),
        ("post", "/v1/exports", [401, 403, 404, 413]),
        ("get", "/v1/exports/{exportId}", [401, 403, 404]),
        ("get", "/v1/exports/{exportId}/manifest", [401, 403, 404, 503]),
        ("get", "/v1/exports/{exportId}/manifest.sig", [401, 403, 404, 503]),
        ("get", "/v1/exports/{exportId}/files/{path}", [401, 403, 404, 503]),
        ("post", "/v1/contributors/challenge", [413]),
        ("post", "/v1/contributors/session", [401, 413]),
        ("get", "/v1/contributor/sales", [401, 403]),
    ];

    [Fact]
    public async Task OpenApi_EachRoute_DeclaresTheProblemsItCanAnswer_Issue13()
    {
        var paths = JsonDocument.Parse(await _market.Host.Api.GetStringAsync("/openapi/v1.json")).RootElement.GetProperty("paths");
        var missing = new List<string>();
        foreach (var (method, path, statuses) in RouteProblems)
        {
            var responses = paths.GetProperty(path).GetProperty(method).GetProperty("responses");
            foreach (var status in statuses.Append(400).Append(429).Select(s => s.ToString(System.Globalization.CultureInfo.InvariantCulture)))
                if (!responses.TryGetProperty(status, out var response) || !response.GetProperty("content").TryGetProperty("application/problem+json", out _))
                    missing.Add($"{method} {path} {status}");
        }
        Assert.Empty(missing);
    }

    private static object GrantBody(long rowQuota, DateTimeOffset? from = null, DateTimeOffset? until = null, string[]? devices = null, decimal? byteQuotaMegabytes = null) => new
    {
        dataset = "vehicle_signals",
        from = from ?? Nov23,
        until,
        devices,
        rowQuota,
        expiresAt = DateTimeOffset.UtcNow.AddDays(7),
        byteQuotaMegabytes,
    };

    private static string? Header(HttpResponseMessage response, string name) => response.Headers.TryGetValues(name, out var values) ? values.Single() : null;

}
