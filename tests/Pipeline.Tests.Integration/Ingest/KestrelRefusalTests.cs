using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Pipeline.Cli.Hosting;
using Pipeline.Core.Envelope;

namespace Pipeline.Tests.Integration.Ingest;

/// <summary>
/// Requests no HTTP client library would send, written on a raw socket: bodies that are malformed, stall, end early or
/// are declared too large. Kestrel refuses them while the endpoint reads; none of them becomes a 500, and an
/// oversized one is refused unread.
/// </summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class KestrelRefusalTests(StackFixture fixture)
{
    [Fact]
    public async Task MalformedChunkedBody_Gets400MalformedNotA500()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Ingest);

        var response = await ExchangeAsync(host, "Transfer-Encoding: chunked", "zz\r\n[{}]\r\n0\r\n\r\n"u8.ToArray(), endSending: false);

        Assert.NotNull(response);
        Assert.True(response.Value.Status == 400, $"{response.Value.Status}: {response.Value.Body}");
        AssertProblem(response.Value, 400, "malformed");
        Assert.Equal(["400"], await RecordedStatusesAsync(host));
    }

    [Fact]
    public async Task BodyThatStopsComing_Gets408NotA500()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Ingest);
        var envelope = new TestDevice("stalled").Next().Envelope;

        // Ten bytes of a thousand, then nothing: Kestrel's minimum body data rate runs out after its grace period.
        var response = await ExchangeAsync(host, "Content-Length: 1000", envelope[..10], endSending: false);

        Assert.NotNull(response);
        Assert.True(response.Value.Status == 408, $"{response.Value.Status}: {response.Value.Body}");
        Assert.Equal("application/problem+json", response.Value.ContentType.Split(';')[0].Trim());
        Assert.Equal(408, JsonDocument.Parse(response.Value.Body).RootElement.GetProperty("status").GetInt32());
    }

    [Fact]
    public async Task BodyCutShortByTheClient_IsAnAbortedRequestNotA500()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Ingest);
        var envelope = new TestDevice("cut-short").Next().Envelope;

        // Kestrel closes a connection whose body ended early without writing any response; the host's request
        // metrics say how the request ended: aborted by the client (499), or refused as a bad request (400) when
        // Kestrel read the short body before it saw the connection close — a client's fault either way, never a 500.
        var response = await ExchangeAsync(host, "Content-Length: 1000", envelope[..10], endSending: true);

        Assert.Null(response);
        Assert.Contains(Assert.Single(await RecordedStatusesAsync(host)), new[] { "499", "400" });
        Assert.Empty(host.ReadAll(host.RawTopic));
    }

    [Fact]
    public async Task ContentLengthOverTheLimit_Gets413TooLarge_BeforeTheBodyIsSent()
    {
        await using var host = await TestHost.StartAsync(fixture, Roles.Ingest);

        var response = await ExchangeAsync(host, $"Content-Length: {EnvelopeLimits.Default.MaxBatchBytes + 1L}", body: [], endSending: false);

        Assert.NotNull(response);
        Assert.True(response.Value.Status == 413, $"{response.Value.Status}: {response.Value.Body}");
        AssertProblem(response.Value, 413, "too_large");
    }

    /// <summary>The response statuses the host's request metrics recorded for POST /v1/readings, once there is one.</summary>
    private static async Task<List<string>> RecordedStatusesAsync(TestHost host)
    {
        const string Requests = "http_server_request_duration_seconds_count";
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            var scrape = await PrometheusScrape.FromAsync(host.Ingest);
            var statuses = new[] { "400", "408", "413", "499", "500" }
                .Where(status => scrape.Has(Requests, "http_route=\"/v1/readings\"", $"http_response_status_code=\"{status}\""))
                .ToList();
            if (statuses.Count > 0) return statuses;
            if (DateTime.UtcNow > deadline) throw new TimeoutException("The request never showed in the host's request metrics: " + await host.Ingest.GetStringAsync("/metrics"));
            await Task.Delay(100);
        }
    }

    private static void AssertProblem((int Status, string ContentType, string Body) response, int status, string reason)
    {
        Assert.Equal("application/problem+json", response.ContentType.Split(';')[0].Trim());
        var problem = JsonDocument.Parse(response.Body).RootElement;
        Assert.Equal(status, problem.GetProperty("status").GetInt32());
        Assert.Equal(reason, problem.GetProperty("reason").GetString());
        Assert.Equal($"/problems/{reason}", problem.GetProperty("type").GetString());
        Assert.False(string.IsNullOrWhiteSpace(problem.GetProperty("detail").GetString()));
    }

    /// <summary>
    /// POSTs a head with <paramref name="framing"/> (Content-Length or Transfer-Encoding) and <paramref name="body"/>,
    /// however it disagrees with it, optionally ends the sending side, and reads the response; null when the server
    /// closed the connection without one.
    /// </summary>
    private static async Task<(int Status, string ContentType, string Body)?> ExchangeAsync(TestHost host, string framing, byte[] body, bool endSending)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var port = host.Ingest.BaseAddress!.Port;
        await socket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), timeout.Token);
        var head = $"POST /v1/readings HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n{framing}\r\n\r\n";
        await socket.SendAsync(Encoding.ASCII.GetBytes(head), timeout.Token);
        if (body.Length > 0) await socket.SendAsync(body, timeout.Token);
        if (endSending) socket.Shutdown(SocketShutdown.Send);

        var received = new MemoryStream();
        var buffer = new byte[8192];
        while (true)
        {
            var response = TryParse(received.ToArray());
            if (response is not null) return response;
            int read;
            try
            {
                read = await socket.ReceiveAsync(buffer, timeout.Token);
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionReset)
            {
                read = 0;
            }
            if (read == 0)
            {
                Assert.True(received.Length == 0, $"The connection closed in the middle of a response: {Encoding.UTF8.GetString(received.ToArray())}");
                return null;
            }
            received.Write(buffer, 0, read);
        }
    }

    /// <summary>The response in <paramref name="received"/>, or null while its head or body is still incomplete.</summary>
    private static (int Status, string ContentType, string Body)? TryParse(byte[] received)
    {
        var split = received.AsSpan().IndexOf("\r\n\r\n"u8);
        if (split < 0) return null;
        var lines = Encoding.ASCII.GetString(received, 0, split).Split("\r\n");
        var status = int.Parse(lines[0].Split(' ')[1], CultureInfo.InvariantCulture);
        var headers = lines.Skip(1).Select(l => l.Split(':', 2)).ToDictionary(p => p[0].Trim(), p => p[1].Trim(), StringComparer.OrdinalIgnoreCase);
        var body = received.AsSpan(split + 4).ToArray();
        if (headers.TryGetValue("Transfer-Encoding", out var encoding) && encoding.Contains("chunked", StringComparison.OrdinalIgnoreCase))
        {
            if (!body.AsSpan().EndsWith("0\r\n\r\n"u8)) return null;
            body = Unchunk(body);
        }
        else if (body.Length < int.Parse(headers.GetValueOrDefault("Content-Length", "0"), CultureInfo.InvariantCulture))
        {
            return null;
        }
        return (status, headers.GetValueOrDefault("Content-Type", ""), Encoding.UTF8.GetString(body));
    }

    private static byte[] Unchunk(byte[] chunked)
    {
        var body = new MemoryStream();
        var at = 0;
        while (true)
        {
            var lineEnd = at + chunked.AsSpan(at).IndexOf("\r\n"u8);
            var size = int.Parse(Encoding.ASCII.GetString(chunked, at, lineEnd - at).Split(';')[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            if (size == 0) return body.ToArray();
            body.Write(chunked, lineEnd + 2, size);
            at = lineEnd + 2 + size + 2;
        }
    }
}
