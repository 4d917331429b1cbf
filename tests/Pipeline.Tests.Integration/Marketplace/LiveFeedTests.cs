using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using Marten;
using Pipeline.Core.Events;

namespace Pipeline.Tests.Integration.Marketplace;

/// <summary>
/// The live feed over HTTP (server-sent events) on a real host: rows are "projected" by committing new Parquet files to
/// the lake's real manifest, as the projector does, while feeds are open.
/// </summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class LiveFeedTests(StackFixture fixture) : IAsyncLifetime
{
    private static readonly DateTimeOffset Nov23 = new(2026, 11, 23, 0, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);
    private MarketTestHost _market = null!;

    public async Task InitializeAsync() => _market = await MarketTestHost.StartAsync(fixture, "it_market_feed", new Dictionary<string, string?>
    {
        ["Marketplace:FeedPollInterval"] = "00:00:00.100",
        ["Marketplace:FeedBufferBatches"] = "4",
        ["Marketplace:FeedDropAfter"] = "00:00:03",
    });

    public async Task DisposeAsync() => await _market.DisposeAsync();

    [Fact]
    public async Task Feed_RowsProjectedAfterSubscribing_ArriveInOrderChargedAndAttributed()
    {
        var (buyer, key) = await _market.CreateBuyerAsync(credits: 100_000);
        var grant = (await _market.BuyAsync(key, Subscription(rowQuota: 10_000))).Id;
        using var feed = await OpenAsync(key, grant);

        var added = await _market.Lake.ProjectAsync(_market.Host, rows: 500);
        var received = await feed.RowsAsync(added.Count);

        Assert.Equal(added.Select(r => r.ReadingId), received.Select(r => r.GetProperty("reading_id").GetString()));
        var account = await _market.AccountAsync(key);
        Assert.Equal(500, account.Grants.Single().RowsUsed);
        Assert.Equal(500, account.Grants.Single().CreditsUsed);
        await using var session = _market.Host.Store.QuerySession();
        var sold = (await session.Events.QueryAllRawEvents().Where(e => e.StreamKey == buyer).ToListAsync()).Select(e => e.Data).OfType<SalesAttributed>().SelectMany(s => s.Lines).ToList();
        foreach (var device in MarketLake.Devices)
            Assert.Equal(added.Count(r => r.Device == device), sold.Where(s => s.Device == device).Sum(s => s.Rows));
        Assert.Equal(500, sold.Sum(s => s.Credits));
    }

    [Fact]
    public async Task Feed_OfAMakesGrant_TakesInADeviceRegisteredUnderTheMakeWhileItIsOpen()
    {
        // The lake's first two devices are Volvos and the third a Saab when the feed opens; then the Saab re-registers as a Volvo.
        await _market.RegisterAsync(MarketTestHost.Device(MarketLake.Devices[0], "Volvo"), MarketTestHost.Device(MarketLake.Devices[1], "Volvo"), MarketTestHost.Device(MarketLake.Devices[2], "Saab"));
        var (_, key) = await _market.CreateBuyerAsync(credits: 100_000);
        var grant = (await _market.BuyAsync(key, new { dataset = "vehicle_signals", from = Nov23, make = "volvo", rowQuota = 10_000, expiresAt = DateTimeOffset.UtcNow.AddDays(7) })).Id;
        using var feed = await OpenAsync(key, grant);
        string DeviceOf(JsonElement row) => row.GetProperty("device").GetString()!;

        var before = await _market.Lake.ProjectAsync(_market.Host, rows: 300);
        Assert.Equal(before.Where(r => r.Device != MarketLake.Devices[2]).Select(r => r.ReadingId),
            (await feed.RowsAsync(200)).Select(r => r.GetProperty("reading_id").GetString()));

        await _market.RegisterAsync(MarketTestHost.Device(MarketLake.Devices[2], "volvo"));
        // The feed hears of it within moments: rows (one of each device) are projected until the third device's come.
        var waiting = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            var added = await _market.Lake.ProjectAsync(_market.Host, rows: 3);
            var received = await feed.RowsAsync(2);
            if (received.Count == 3 || (received.Count == 2 && received.Any(r => DeviceOf(r) == MarketLake.Devices[2])))
            {
                if (received.Count == 2) received.AddRange(await feed.RowsAsync(1));
                Assert.Equal(added.Select(r => r.ReadingId), received.Select(r => r.GetProperty("reading_id").GetString()));
                break;
            }
            Assert.Equal(added.Where(r => r.Device != MarketLake.Devices[2]).Select(r => r.ReadingId), received.Select(r => r.GetProperty("reading_id").GetString()));
            Assert.True(waiting.Elapsed < TimeSpan.FromSeconds(10), "The feed still left out the device registered under the make after 10 s.");
        }

        var after = await _market.Lake.ProjectAsync(_market.Host, rows: 300);
        Assert.Equal(after.Select(r => r.ReadingId), (await feed.RowsAsync(300)).Select(r => r.GetProperty("reading_id").GetString()));
    }

    [Fact]
    public async Task Feed_ResumedWithLastEventId_SendsEveryRowExactlyOnce()
    {
        var (_, key) = await _market.CreateBuyerAsync(credits: 100_000);
        var grant = (await _market.BuyAsync(key, Subscription(rowQuota: 10_000))).Id;
        var received = new List<string>();
        string lastId;
        using (var first = await OpenAsync(key, grant))
        {
            var before = await _market.Lake.ProjectAsync(_market.Host, rows: 300);
            received.AddRange((await first.RowsAsync(before.Count)).Select(r => r.GetProperty("reading_id").GetString()!));
            lastId = first.LastEventId!;
        }
        var after = await _market.Lake.ProjectAsync(_market.Host, rows: 200);
        using (var resumed = await OpenAsync(key, grant, lastId))
            received.AddRange((await resumed.RowsAsync(after.Count)).Select(r => r.GetProperty("reading_id").GetString()!));

        Assert.Equal(_market.Lake.Rows.TakeLast(500).Select(r => r.ReadingId), received);
    }

    [Fact]
    public async Task Feed_PastTheQuota_SendsTheQuotaThenEndsWithQuotaExhausted()
    {
        var (_, key) = await _market.CreateBuyerAsync(credits: 100_000);
        var grant = (await _market.BuyAsync(key, Subscription(rowQuota: 150))).Id;
        using var feed = await OpenAsync(key, grant);
        var added = await _market.Lake.ProjectAsync(_market.Host, rows: 400);

        var received = await feed.RowsAsync(150);
        var end = await feed.NextAsync();
        Assert.Equal("end", end.Event);
        Assert.Equal("quota_exhausted", JsonDocument.Parse(end.Data).RootElement.GetProperty("reason").GetString());
        Assert.Equal(added.Take(150).Select(r => r.ReadingId), received.Select(r => r.GetProperty("reading_id").GetString()));
        Assert.Equal(150, (await _market.AccountAsync(key)).Grants.Single().RowsUsed);
    }

    [Fact]
    public async Task Feed_PastTheByteQuota_SendsTheRowsThatFitInOrder_ThenEndsWithByteQuotaExceeded()
    {
        var (_, key) = await _market.CreateBuyerAsync(credits: 100_000);
        // 20,000 bytes of rows' JSON: a good part of the 400 rows, not all of them.
        var grant = (await _market.BuyAsync(key, new { dataset = "vehicle_signals", from = Nov23, rowQuota = 10_000, byteQuotaMegabytes = 0.02m, expiresAt = DateTimeOffset.UtcNow.AddDays(7) })).Id;
        using var feed = await OpenAsync(key, grant);
        var added = await _market.Lake.ProjectAsync(_market.Host, rows: 400);

        var received = new List<JsonElement>();
        (string Event, string Data) next;
        while ((next = await feed.NextAsync()).Event == "rows") received.AddRange(JsonDocument.Parse(next.Data).RootElement.EnumerateArray().Select(r => r.Clone()));
        Assert.Equal("end", next.Event);
        var end = JsonDocument.Parse(next.Data).RootElement;
        Assert.Equal("byte_quota_exceeded", end.GetProperty("reason").GetString());
        Assert.Contains("byteQuotaMegabytes", end.GetProperty("detail").GetString(), StringComparison.Ordinal);

        // The first rows, none skipped, as many as fit; exactly those are charged.
        Assert.InRange(received.Count, 1, added.Count - 1);
        Assert.Equal(added.Take(received.Count).Select(r => r.ReadingId), received.Select(r => r.GetProperty("reading_id").GetString()));
        var bytes = received.Sum(r => (long)System.Text.Encoding.UTF8.GetByteCount(r.GetRawText()));
        Assert.InRange(bytes, 20_000 - 1_000, 20_000);
        var used = (await _market.AccountAsync(key)).Grants.Single();
        Assert.Equal((received.Count, bytes), (used.RowsUsed, used.BytesUsed));
    }

    [Fact]
    public async Task Feed_WhoseKeyIsRevokedWhileItIsOpen_EndsWithRevokedKey_AndChargesNoRowAfterIt()
    {
        // A leaked key opened a feed; the buyer revokes it with another key. The feed must not go on spending the grant.
        var (_, key) = await _market.CreateBuyerAsync(credits: 100_000);
        var issued = await (await _market.SendAsync(HttpMethod.Post, "/v1/account/keys", key, new { label = "leaked" })).Content.ReadFromJsonAsync<JsonElement>();
        var leaked = issued.GetProperty("apiKey").GetString()!;
        var grant = (await _market.BuyAsync(key, Subscription(rowQuota: 10_000))).Id;
        using var feed = await OpenAsync(leaked, grant);
        var before = await _market.Lake.ProjectAsync(_market.Host, rows: 100);
        await feed.RowsAsync(before.Count);

        Assert.Equal(HttpStatusCode.OK, (await _market.SendAsync(HttpMethod.Delete, $"/v1/account/keys/{issued.GetProperty("key").GetProperty("id").GetString()}", key)).StatusCode);
        await _market.Lake.ProjectAsync(_market.Host, rows: 100);

        var end = await feed.NextAsync();
        Assert.Equal("end", end.Event);
        Assert.Equal("revoked_key", JsonDocument.Parse(end.Data).RootElement.GetProperty("reason").GetString());
        Assert.Equal(before.Count, (await _market.AccountAsync(key)).Grants.Single().RowsUsed);
    }

    [Theory]
    [InlineData("9223372036854775807:9223372036854775807")] // past the lake: would skip rows nobody paid for yet, or read ahead
    [InlineData("0:-1")]
    [InlineData("0:1e3")]
    [InlineData("0:0:0")]
    [InlineData("garbage")]
    public async Task Feed_ResumedWithAForgedLastEventId_IsRefusedInvalidRequest(string lastEventId)
    {
        var (_, key) = await _market.CreateBuyerAsync(credits: 100_000);
        var grant = (await _market.BuyAsync(key, Subscription(rowQuota: 10_000))).Id;
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/grants/{grant}/feed");
        request.Headers.TryAddWithoutValidation("Authorization", $"Bearer {key}");
        request.Headers.TryAddWithoutValidation("Last-Event-ID", lastEventId);
        await MarketTestHost.AssertProblemAsync(await _market.Host.Api.SendAsync(request), HttpStatusCode.BadRequest, "invalid_request");
    }

    [Fact]
    public async Task Feed_ResumedFromTheStartOfTheLog_ChargesEveryRowItSendsAgain_SoRereadingIsNeverFree()
    {
        var (_, key) = await _market.CreateBuyerAsync(credits: 100_000);
        var grant = (await _market.BuyAsync(key, Subscription(rowQuota: 100_000))).Id;
        var rows = _market.Lake.Rows.Count;
        using (var first = await OpenAsync(key, grant, "0:0")) await first.RowsAsync(rows);
        using (var again = await OpenAsync(key, grant, "0:0")) await again.RowsAsync(rows);
        var used = (await _market.AccountAsync(key)).Grants.Single();
        Assert.Equal(2L * rows, used.RowsUsed); // each read charged whole: every row it sent
        Assert.Equal(used.RowsUsed, used.CreditsUsed);
    }

    [Fact]
    public async Task Feed_OfAFixedRangeGrant_IsRefusedNotSubscription()
    {
        var (_, key) = await _market.CreateBuyerAsync(credits: 100_000);
        var grant = (await _market.BuyAsync(key, Subscription(rowQuota: 100, until: Nov23.AddDays(2)))).Id;
        await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Get, $"/v1/grants/{grant}/feed", key), HttpStatusCode.Conflict, "not_subscription");
    }

    [Fact]
    public async Task Feed_OfAnotherBuyersGrant_IsUnknown()
    {
        var (_, owner) = await _market.CreateBuyerAsync(credits: 100_000);
        var (_, stranger) = await _market.CreateBuyerAsync(credits: 100_000);
        var grant = (await _market.BuyAsync(owner, Subscription(rowQuota: 100))).Id;
        await MarketTestHost.AssertProblemAsync(await _market.SendAsync(HttpMethod.Get, $"/v1/grants/{grant}/feed", stranger), HttpStatusCode.NotFound, "unknown_grant");
    }

    [Fact]
    public async Task Feed_ASlowReader_IsDroppedWithoutHoldingBackAnother()
    {
        var (_, key) = await _market.CreateBuyerAsync(credits: 1_000_000);
        var grant = (await _market.BuyAsync(key, Subscription(rowQuota: 250_000))).Id;
        // The slow client's socket takes little (16 KiB, no autotuning): with Linux's default autotuning (up to 32 MiB
        // here) the kernel alone would hold the whole stream and the server would never see the client fall behind.
        using var slowClient = new HttpClient(new SocketsHttpHandler { ConnectCallback = ConnectWithSmallReceiveBufferAsync }) { BaseAddress = _market.Host.Api.BaseAddress };
        using var slow = await OpenAsync(key, grant, client: slowClient);
        using var fast = await OpenAsync(key, grant);

        // Enough rows to fill the slow client's socket, the server's send buffer (up to 4 MiB) and its buffer of batches
        // several times over.
        var added = await _market.Lake.ProjectAsync(_market.Host, rows: 200_000);
        var received = await fast.RowsAsync(added.Count);
        Assert.Equal(added[^1].ReadingId, received[^1].GetProperty("reading_id").GetString());

        // The slow client stalls, its buffers full, for longer than FeedDropAfter (3 s) — however fast the fast one was
        // served — and is dropped: its stream ends (the connection closed) before it got everything.
        await Task.Delay(TimeSpan.FromSeconds(4));
        var slowRows = 0;
        try
        {
            while (slowRows < added.Count && await slow.NextAsync() is { Event: "rows" } next) slowRows += JsonDocument.Parse(next.Data).RootElement.GetArrayLength();
        }
        catch (Exception e) when (e is IOException or HttpRequestException or EndOfStreamException)
        {
        }
        Assert.InRange(slowRows, 0, added.Count - 1);
    }

    private static object Subscription(long rowQuota, DateTimeOffset? until = null) =>
        new { dataset = "vehicle_signals", from = Nov23, until, rowQuota, expiresAt = DateTimeOffset.UtcNow.AddDays(7) };

    private static async ValueTask<Stream> ConnectWithSmallReceiveBufferAsync(SocketsHttpConnectionContext context, CancellationToken cancellation)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 16 * 1024 };
        try
        {
            await socket.ConnectAsync(context.DnsEndPoint, cancellation);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private async Task<FeedReader> OpenAsync(string key, string grant, string? lastEventId = null, HttpClient? client = null)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/v1/grants/{grant}/feed");
        request.Headers.TryAddWithoutValidation("Authorization", $"Bearer {key}");
        if (lastEventId is not null) request.Headers.TryAddWithoutValidation("Last-Event-ID", lastEventId);
        var response = await (client ?? _market.Host.Api).SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        if (response.StatusCode != HttpStatusCode.OK) Assert.Fail($"{response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        return new FeedReader(response, await response.Content.ReadAsStreamAsync());
    }

    /// <summary>Reads server-sent events: comments skipped, fields id, event and data of each event.</summary>
    private sealed class FeedReader(HttpResponseMessage response, Stream body) : IDisposable
    {
        private readonly StreamReader _reader = new(body);

        public string? LastEventId { get; private set; }

        public async Task<(string Event, string Data)> NextAsync()
        {
            using var timeout = new CancellationTokenSource(Patience);
            string? id = null, type = null, data = null;
            while (await _reader.ReadLineAsync(timeout.Token) is { } line)
            {
                if (line.Length == 0)
                {
                    if (data is null) continue; // the end of a comment block
                    if (id is not null) LastEventId = id;
                    return (type ?? "message", data);
                }
                if (line.StartsWith(':')) continue;
                if (line.StartsWith("id: ", StringComparison.Ordinal)) id = line[4..];
                else if (line.StartsWith("event: ", StringComparison.Ordinal)) type = line[7..];
                else if (line.StartsWith("data: ", StringComparison.Ordinal)) data = line[6..];
            }
            throw new EndOfStreamException("The feed ended.");
        }

        /// <summary>Row events until <paramref name="count"/> rows came; fails on an end event.</summary>
        public async Task<List<JsonElement>> RowsAsync(int count)
        {
            var rows = new List<JsonElement>();
            while (rows.Count < count)
            {
                var (type, data) = await NextAsync();
                Assert.True(type == "rows", $"Expected rows, got {type}: {data}");
                rows.AddRange(JsonDocument.Parse(data).RootElement.EnumerateArray().Select(r => r.Clone()));
            }
            return rows;
        }

        public void Dispose()
        {
            _reader.Dispose();
            response.Dispose();
        }
    }
}
