using System.Diagnostics;
using System.IO.Compression;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Pipeline.Cli.Hosting;
using Pipeline.Core.Envelope;
using Pipeline.Core.Kafka;

namespace Pipeline.Tests.Integration.Ingest;

[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class HttpIngestTests(StackFixture fixture)
{
    [Fact]
    public async Task PostedReadings_InEveryBodyForm_ArriveOncePerAcknowledgedReadingInDeviceOrder()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Ingest);
        var devices = Enumerable.Range(0, 5).Select(i => new TestDevice($"http-{i}")).ToList();
        var acknowledged = new List<string>();

        for (var round = 0; round < 8; round++)
        {
            foreach (var device in devices)
            {
                var readings = Enumerable.Range(0, 5).Select(_ => device.Next()).ToList();
                var response = (round % 4) switch
                {
                    0 => await PostSinglesAsync(host, readings.Select(r => r.Envelope)),
                    1 => await PostAsync(host, JsonArray(readings.Select(r => r.Envelope)), "application/json"),
                    2 => await PostAsync(host, Ndjson(readings.Select(r => r.Envelope)), "application/x-ndjson"),
                    _ => await PostAsync(host, Gzip(JsonArray(readings.Select(r => r.Envelope))), "application/json", gzip: true),
                };
                Assert.All(response, r => Assert.Equal("accepted", r.Status));
                acknowledged.AddRange(response.Select(r => r.Id!));
                Assert.Equal(readings.Select(r => r.Id), response.Select(r => r.Id));
            }
        }

        var messages = host.ReadAll(host.RawTopic);
        var ids = messages.Select(m => EnvelopeParser.Parse(m.Message.Value, EnvelopeLimits.Default).Reading!.Id).ToList();
        Assert.Equal(acknowledged.Count, ids.Count);
        Assert.Equal(acknowledged.Order(), ids.Order());
        foreach (var device in devices)
        {
            var mine = messages.Where(m => m.Message.Key == device.Address).ToList();
            Assert.Single(mine.Select(m => m.Partition.Value).Distinct());
            var seqs = mine.OrderBy(m => m.Offset.Value).Select(m => EnvelopeParser.Parse(m.Message.Value, EnvelopeLimits.Default).Reading!.Content.Seq).ToList();
            Assert.Equal(Enumerable.Range(1, 40).Select(i => (long)i), seqs);
            Assert.All(mine, m => Assert.Equal("http", Encoding.ASCII.GetString(m.Message.Headers.GetLastBytes(HeaderNames.Transport))));
        }
    }

    [Fact]
    public async Task Curl_PostingAnNdjsonFile_Gets202WithAReceiptPerReading()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Ingest);
        var device = new TestDevice("curl");
        var readings = Enumerable.Range(0, 3).Select(_ => device.Next()).ToList();
        var file = Path.GetTempFileName();
        await File.WriteAllBytesAsync(file, Ndjson(readings.Select(r => r.Envelope)));

        var curl = Process.Start(new ProcessStartInfo("curl", ["-s", "-w", "\n%{http_code}", "-H", "Content-Type: application/x-ndjson", "--data-binary", "@" + file, host.Ingest.BaseAddress + "v1/readings"]) { RedirectStandardOutput = true })!;
        var output = (await curl.StandardOutput.ReadToEndAsync()).Split('\n');
        await curl.WaitForExitAsync();
        File.Delete(file);

        Assert.Equal("202", output[^1]);
        var body = JsonSerializer.Deserialize<ReadingsBody>(output[0], JsonSerializerOptions.Web)!;
        Assert.Equal(3, body.Accepted);
        Assert.Equal(readings.Select(r => r.Id), body.Receipts.Select(r => r.Id));
    }

    [Fact]
    public async Task PartialBatch_WithEdgeSignatureCheck_RefusesOnlyTheBadReadingsAndSaysWhy()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Ingest, new Dictionary<string, string?> { ["Ingest:VerifySignatures"] = "true" });
        var device = new TestDevice("partial");
        var good1 = device.Next();
        var forged = device.Next();
        // v = 29, which no signature has: a tampered r or s could still recover some other key (then signer_mismatch).
        var forgedEnvelope = Encoding.UTF8.GetString(forged.Envelope);
        var sigEnd = forgedEnvelope.IndexOf("\"}", StringComparison.Ordinal);
        forgedEnvelope = forgedEnvelope[..(sigEnd - 2)] + "1d" + forgedEnvelope[sigEnd..];
        var otherSigner = new TestDevice("impostor");
        var stolenName = ReadingWriter.Sign(otherSigner.Key, device.Next().Payload);
        var good2 = device.Next();
        var body = $"[{Encoding.UTF8.GetString(good1.Envelope)},{forgedEnvelope},{{\"payload\":\"{{}}\",\"sig\":\"0x00\",\"x\":1}},{Encoding.UTF8.GetString(stolenName)},{Encoding.UTF8.GetString(good2.Envelope)}]";

        var response = await host.Ingest.PostAsync("/v1/readings", new StringContent(body, Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Accepted, response.StatusCode);
        var receipts = (await response.Content.ReadFromJsonAsync<ReadingsBody>())!.Receipts;
        Assert.Equal(["accepted", "refused", "refused", "refused", "accepted"], receipts.Select(r => r.Status));
        Assert.Equal([null, "bad_signature", "unknown_field", "signer_mismatch", null], receipts.Select(r => r.Reason));
        Assert.All(receipts.Where(r => r.Reason is not null), r => Assert.False(string.IsNullOrWhiteSpace(r.Detail)));

        var ids = host.ReadAll(host.RawTopic).Select(m => EnvelopeParser.Parse(m.Message.Value, EnvelopeLimits.Default).Reading!.Id);
        Assert.Equal(new[] { good1.Id, good2.Id }.Order(), ids.Order());
    }

    public static TheoryData<string, string?, string?, byte[], int, string> BadBodies()
    {
        var device = new TestDevice("bad-bodies");
        var valid = device.Next().Envelope;
        var deep = "[" + string.Concat(Enumerable.Repeat("[", 64)) + string.Concat(Enumerable.Repeat("]", 64)) + "]";
        var truncatedGzip = Gzip(valid)[..20];
        var badUtf8 = (byte[])valid.Clone();
        badUtf8[12] = 0xFF;
        return new()
        {
            { "wrong content type", "text/plain", null, valid, 415, "unsupported_media_type" },
            { "no content type", null, null, valid, 415, "unsupported_media_type" },
            { "latin-1 charset", "application/json; charset=iso-8859-1", null, valid, 415, "unsupported_media_type" },
            { "unknown encoding", "application/json", "br", valid, 415, "unsupported_media_type" },
            { "truncated gzip", "application/json", "gzip", truncatedGzip, 400, "bad_encoding" },
            { "garbage as gzip", "application/json", "gzip", "not gzip at all"u8.ToArray(), 400, "bad_encoding" },
            { "bad UTF-8", "application/json", null, badUtf8, 400, "bad_encoding" },
            { "deep JSON", "application/json", null, Encoding.UTF8.GetBytes(deep), 400, "malformed" },
            { "not JSON", "application/json", null, "hello"u8.ToArray(), 400, "malformed" },
            { "empty body", "application/json", null, [], 400, "malformed" },
            { "unknown field", "application/json", null, Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(valid).TrimEnd('}') + ",\"extra\":1}"), 400, "unknown_field" },
            { "oversized body", "application/json", null, Encoding.UTF8.GetBytes("[" + string.Join(",", Enumerable.Repeat("{}", 2_500_000)) + "]"), 413, "too_large" },
            { "gzip bomb", "application/json", "gzip", Gzip(new byte[20 * 1024 * 1024]), 413, "too_large" },
            { "array of numbers", "application/json", null, "[1,2,3]"u8.ToArray(), 400, "malformed" },
        };
    }

    [Theory]
    [MemberData(nameof(BadBodies))]
    public async Task BadBody_GetsAProblemResponseWithAReasonCode_NeverA500(string what, string? contentType, string? encoding, byte[] body, int status, string reason)
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Ingest);
        var content = new ByteArrayContent(body);
        if (contentType is not null) content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        if (encoding is not null) content.Headers.ContentEncoding.Add(encoding);

        var response = await host.Ingest.PostAsync("/v1/readings", content);
        Assert.True(status == (int)response.StatusCode, $"{what}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(reason, problem.GetProperty("reason").GetString());
        Assert.Equal($"/problems/{reason}", problem.GetProperty("type").GetString());
        Assert.Equal(status, problem.GetProperty("status").GetInt32());
        Assert.False(string.IsNullOrWhiteSpace(problem.GetProperty("detail").GetString()));

        var explained = await host.Ingest.GetFromJsonAsync<JsonElement>(problem.GetProperty("type").GetString());
        Assert.Equal(reason, explained.GetProperty("reason").GetString());
        Assert.Empty(host.ReadAll(host.RawTopic));
    }

    [Fact]
    public async Task DeviceOverItsRate_IsRefusedRateLimited_AndAWholeRefusedRequestGets429()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Ingest, new Dictionary<string, string?>
        {
            ["Ingest:DeviceBurst"] = "5",
            ["Ingest:DeviceReadingsPerSecond"] = "1",
        });
        var device = new TestDevice("rate");
        var first = await PostAsync(host, JsonArray(Enumerable.Range(0, 8).Select(_ => device.Next().Envelope)), "application/json");
        Assert.Equal(5, first.Count(r => r.Status == "accepted"));
        Assert.Equal(3, first.Count(r => r.Reason == "rate_limited"));

        var response = await host.Ingest.PostAsync("/v1/readings", new ByteArrayContent(device.Next().Envelope) { Headers = { ContentType = new("application/json") } });
        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        Assert.NotNull(response.Headers.RetryAfter);
    }

    [Fact]
    public async Task ClientOverItsRequestRate_Gets429WithRetryAfter()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Ingest, new Dictionary<string, string?>
        {
            ["Ingest:ClientBurst"] = "2",
            ["Ingest:ClientRequestsPerSecond"] = "1",
        });
        var device = new TestDevice("client-rate");
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 3; i++)
            statuses.Add((await host.Ingest.PostAsync("/v1/readings", new ByteArrayContent(device.Next().Envelope) { Headers = { ContentType = new("application/json") } })).StatusCode);
        Assert.Equal([HttpStatusCode.Accepted, HttpStatusCode.Accepted, HttpStatusCode.TooManyRequests], statuses);
    }

    [Fact]
    public async Task ForgedReadingsNamingADevice_FromAnotherClient_DoNotSpendThatDevicesRate()
    {
        // Without the edge signature check the device a payload names is only a claim: an attacker posting readings that
        // name a victim's address must not get the victim's own readings refused as rate_limited.
        await using var host = await TestHost.StartAsync(fixture, Roles.Ingest, new Dictionary<string, string?>
        {
            ["Ingest:DeviceBurst"] = "3",
            ["Ingest:DeviceReadingsPerSecond"] = "1",
        });
        var victim = new TestDevice("rate-victim");
        var attacker = new TestDevice("rate-attacker");
        using var attackerClient = ClientFrom(host, IPAddress.Parse("127.0.0.2"));
        var forged = Enumerable.Range(0, 5).Select(_ => ReadingWriter.Sign(attacker.Key, victim.Next().Payload));
        var flood = await PostAsync(attackerClient, JsonArray(forged), "application/json");
        Assert.Equal(["accepted", "accepted", "accepted", "refused", "refused"], flood.Select(r => r.Status));
        Assert.Equal(2, flood.Count(r => r.Reason == "rate_limited"));

        var genuine = await PostAsync(host, JsonArray(Enumerable.Range(0, 3).Select(_ => victim.Next().Envelope)), "application/json");
        Assert.All(genuine, r => Assert.Equal("accepted", r.Status));
    }

    [Fact]
    public async Task DeviceOverItsRate_WithEdgeSignatureCheck_IsOneBucketWhereverItSendsFrom()
    {
        // Verified at the edge, the device proved itself: changing address does not buy it a second burst.
        await using var host = await TestHost.StartAsync(fixture, Roles.Ingest, new Dictionary<string, string?>
        {
            ["Ingest:VerifySignatures"] = "true",
            ["Ingest:DeviceBurst"] = "3",
            ["Ingest:DeviceReadingsPerSecond"] = "1",
        });
        var device = new TestDevice("rate-verified");
        using var elsewhere = ClientFrom(host, IPAddress.Parse("127.0.0.2"));
        var first = await PostAsync(elsewhere, JsonArray(Enumerable.Range(0, 3).Select(_ => device.Next().Envelope)), "application/json");
        Assert.All(first, r => Assert.Equal("accepted", r.Status));

        var response = await host.Ingest.PostAsync("/v1/readings", new ByteArrayContent(JsonArray(Enumerable.Range(0, 3).Select(_ => device.Next().Envelope))) { Headers = { ContentType = new("application/json") } });
        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("rate_limited", problem.GetProperty("reason").GetString());
    }

    [Fact]
    public async Task OpenApi_DescribesTheReadingsBody_AndTheProblemsEndpoint()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Ingest);
        var document = await host.Ingest.GetFromJsonAsync<JsonElement>("/openapi/v1.json");
        var paths = document.GetProperty("paths");

        var post = paths.GetProperty("/v1/readings").GetProperty("post");
        var content = post.GetProperty("requestBody").GetProperty("content");
        Assert.Equal(2, content.GetProperty("application/json").GetProperty("schema").GetProperty("oneOf").GetArrayLength());
        Assert.True(content.TryGetProperty("application/x-ndjson", out _));
        Assert.Equal(["202", "400", "413", "415", "429", "503"], post.GetProperty("responses").EnumerateObject().Select(r => r.Name).Order());

        var explain = paths.GetProperty("/problems/{reason}").GetProperty("get").GetProperty("responses");
        Assert.Equal(["200", "404"], explain.EnumerateObject().Select(r => r.Name).Order());
        Assert.True(explain.GetProperty("200").TryGetProperty("content", out _));
    }

    [Fact]
    public async Task Metrics_CountReadingsByOutcome_AndTimeProducesInSecondBuckets()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Ingest);
        var device = new TestDevice("metrics");
        var good = Enumerable.Range(0, 4).Select(_ => device.Next().Envelope).ToList();
        var withUnknownField = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(device.Next().Envelope).TrimEnd('}') + ",\"extra\":1}");
        var receipts = await PostAsync(host, JsonArray([.. good, withUnknownField]), "application/json");
        Assert.Equal(4, receipts.Count(r => r.Status == "accepted"));
        var notJson = await host.Ingest.PostAsync("/v1/readings", new StringContent("hello", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.BadRequest, notJson.StatusCode);

        var scrape = await PrometheusScrape.FromAsync(host.Ingest);
        Assert.Equal(5, scrape.Value("pipeline_ingest_readings_received_total", "transport=\"http\""));
        Assert.Equal(4, scrape.Value("pipeline_ingest_readings_accepted_total", "transport=\"http\""));
        Assert.Equal(1, scrape.Value("pipeline_ingest_readings_refused_total", "reason=\"unknown_field\""));
        Assert.Equal(1, scrape.Value("pipeline_ingest_readings_refused_total", "reason=\"malformed\""));
        Assert.Equal(0, scrape.Value("pipeline_ingest_inflight_bytes"));
        // One request's produce, timed in seconds: it lands in a sub-second bucket, not in the first of millisecond-shaped ones.
        Assert.Equal(1, scrape.Value("pipeline_ingest_produce_duration_seconds_count"));
        Assert.Equal(1, scrape.Value("pipeline_ingest_produce_duration_seconds_bucket", "le=\"1\""));
        Assert.Equal(0, scrape.Value("pipeline_ingest_produce_duration_seconds_bucket", "le=\"0.001\""));
    }

    internal sealed record ReceiptBody(int Index, string Status, string? Id, string? Reason, string? Detail);
    internal sealed record ReadingsBody(int Accepted, int Refused, int Unavailable, List<ReceiptBody> Receipts);

    internal static Task<List<ReceiptBody>> PostAsync(TestHost host, byte[] body, string contentType, bool gzip = false) =>
        PostAsync(host.Ingest, body, contentType, gzip);

    internal static async Task<List<ReceiptBody>> PostAsync(HttpClient ingest, byte[] body, string contentType, bool gzip = false)
    {
        var content = new ByteArrayContent(body);
        content.Headers.ContentType = new MediaTypeHeaderValue(contentType);
        if (gzip) content.Headers.ContentEncoding.Add("gzip");
        var response = await ingest.PostAsync("/v1/readings", content);
        Assert.True(response.StatusCode == HttpStatusCode.Accepted, await response.Content.ReadAsStringAsync());
        return (await response.Content.ReadFromJsonAsync<ReadingsBody>())!.Receipts;
    }

    /// <summary>A client of the host's ingest port whose connections come from <paramref name="local"/> (any 127.x address on Linux): another client to the edge.</summary>
    internal static HttpClient ClientFrom(TestHost host, IPAddress local) => new(new SocketsHttpHandler
    {
        ConnectCallback = async (context, cancellation) =>
        {
            var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                socket.Bind(new IPEndPoint(local, 0));
                await socket.ConnectAsync(context.DnsEndPoint, cancellation);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    })
    { BaseAddress = host.Ingest.BaseAddress };

    private static async Task<List<ReceiptBody>> PostSinglesAsync(TestHost host, IEnumerable<byte[]> envelopes)
    {
        var receipts = new List<ReceiptBody>();
        foreach (var envelope in envelopes) receipts.AddRange(await PostAsync(host, envelope, "application/json"));
        return receipts;
    }

    internal static byte[] JsonArray(IEnumerable<byte[]> envelopes) => Encoding.UTF8.GetBytes("[" + string.Join(",", envelopes.Select(Encoding.UTF8.GetString)) + "]");

    internal static byte[] Ndjson(IEnumerable<byte[]> envelopes) => Encoding.UTF8.GetBytes(string.Join("\n", envelopes.Select(Encoding.UTF8.GetString)) + "\n");

    internal static byte[] Gzip(byte[] bytes)
    {
        using var output = new MemoryStream();
        using (var gzip = new GZipStream(output, CompressionLevel.Fastest)) gzip.Write(bytes);
        return output.ToArray();
    }
}
