using System.Diagnostics.Metrics;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Ingest;
using Pipeline.Ingest.Gateway;

namespace Pipeline.Tests.Unit.Ingest;

/// <summary>
/// The edge's decisions, against an in-memory broker: what is produced, what is answered duplicate, whose rate a reading
/// spends, and what a broker that does not acknowledge means for a resend.
/// </summary>
public sealed class ReadingGatewayTests : IDisposable
{
    private readonly ServiceProvider _metrics = new ServiceCollection().AddMetrics().BuildServiceProvider();
    private readonly MemoryBroker _broker = new();
    private readonly EthKey _device = EthKey.FromSeed("gateway-device"u8);
    private long _seq;

    private ReadingGateway Gateway(int deviceBurst = 1_000)
    {
        var options = Options.Create(new IngestOptions { DeviceReadingsPerSecond = 1, DeviceBurst = deviceBurst });
        var backlog = new BacklogGate();
        backlog.SetRetention(null, 0.25);
        backlog.MarkKnown();
        return new ReadingGateway(_broker, backlog, new IngestMetrics(_metrics.GetRequiredService<IMeterFactory>(), _broker, backlog), options, TimeProvider.System);
    }

    private byte[] Reading(EthKey? key = null)
    {
        var signer = key ?? _device;
        return ReadingWriter.Sign(signer, ReadingWriter.Payload(signer.Address, ++_seq, DateTimeOffset.UtcNow, DeviceKind.Vehicle, [new("Vehicle.Speed", 50)]));
    }

    private static IReadOnlyList<BatchItem> Batch(params byte[][] envelopes) =>
        BatchParser.Parse(Encoding.UTF8.GetBytes("[" + string.Join(",", envelopes.Select(Encoding.UTF8.GetString)) + "]"), BatchFormat.Json, EnvelopeLimits.Default).Items;

    private static Sender Http(string client = "198.51.100.7") => new("http", client);

    [Fact]
    public async Task TheSameReadingTwiceInOneRequest_IsProducedOnce_AndTheCopyAnsweredDuplicate()
    {
        var reading = Reading();

        var result = await Gateway().SubmitAsync(Batch(reading, reading), Http(), CancellationToken.None);

        Assert.Equal([Receipt.AcceptedStatus, Receipt.DuplicateStatus], result.Receipts.Select(r => r.Status));
        Assert.Single(_broker.Produced);
    }

    [Fact]
    public async Task AReadingTheBrokerAcknowledged_SentAgain_IsDuplicate_NeitherProducedNorChargedToTheDevice()
    {
        var gateway = Gateway(deviceBurst: 2);
        var reading = Reading();
        Assert.Equal(1, (await gateway.SubmitAsync(Batch(reading), Http(), CancellationToken.None)).Accepted);

        for (var resend = 0; resend < 5; resend++)
            Assert.Equal(1, (await gateway.SubmitAsync(Batch(reading), Http(), CancellationToken.None)).Duplicates);
        var next = await gateway.SubmitAsync(Batch(Reading()), Http(), CancellationToken.None);

        Assert.Equal(1, next.Accepted);
        Assert.Equal(2, _broker.Produced.Count);
    }

    [Fact]
    public async Task UnverifiedReadings_SpendTheirClientsBucketForTheDevice_SoAnotherClientNamingItIsNotHeldBack()
    {
        var gateway = Gateway(deviceBurst: 1);

        var first = await gateway.SubmitAsync(Batch(Reading(), Reading()), Http("198.51.100.7"), CancellationToken.None);
        var other = await gateway.SubmitAsync(Batch(Reading()), Http("203.0.113.9"), CancellationToken.None);

        Assert.Equal([Receipt.AcceptedStatus, Receipt.RefusedStatus], first.Receipts.Select(r => r.Status));
        Assert.Equal(ReasonCode.RateLimited.ToWire(), first.Receipts[1].Reason);
        Assert.Equal(1, other.Accepted);
    }

    [Fact]
    public async Task AnMqttPublishOfMoreReadingsThanTheBurst_IsRefusedTooLargeAsAWhole()
    {
        var result = await Gateway(deviceBurst: 2).SubmitAsync(Batch(Reading(), Reading(), Reading()), new Sender("mqtt", "dongle", _device.Address), CancellationToken.None);

        Assert.All(result.Receipts, r => Assert.Equal(ReasonCode.TooLarge.ToWire(), r.Reason));
        Assert.Empty(_broker.Produced);
    }

    [Fact]
    public async Task AReadingOfAnotherDeviceThanTheTopicNames_IsRefusedBadAddress()
    {
        var stranger = EthKey.FromSeed("gateway-stranger"u8);

        var result = await Gateway().SubmitAsync(Batch(Reading(stranger)), new Sender("mqtt", "dongle", _device.Address), CancellationToken.None);

        Assert.Equal(ReasonCode.BadAddress.ToWire(), Assert.Single(result.Receipts).Reason);
        Assert.Empty(_broker.Produced);
    }

    [Fact]
    public async Task AReadingTheBrokerDidNotAcknowledge_IsUnavailable_AndProducedAgainWhenResent()
    {
        var gateway = Gateway();
        var reading = Reading();
        _broker.Answer = Delivery.Pending;
        var first = await gateway.SubmitAsync(Batch(reading), Http(), CancellationToken.None);
        _broker.Answer = Delivery.Acknowledged;
        var resent = await gateway.SubmitAsync(Batch(reading), Http(), CancellationToken.None);

        Assert.Equal(Receipt.UnavailableStatus, Assert.Single(first.Receipts).Status);
        Assert.Equal(Receipt.AcceptedStatus, Assert.Single(resent.Receipts).Status);
        Assert.Equal(0, _broker.InFlightBytes);
    }

    public void Dispose() => _metrics.Dispose();

    /// <summary>A broker in memory: records what it acknowledges, answers every reading of a request alike.</summary>
    private sealed class MemoryBroker : IReadingBroker
    {
        private long _inFlight;

        public List<OutgoingReading> Produced { get; } = [];
        public Delivery Answer { get; set; } = Delivery.Acknowledged;
        public long InFlightBytes => _inFlight;

        public bool TryReserve(long bytes)
        {
            _inFlight += bytes;
            return true;
        }

        public void Release(long bytes) => _inFlight -= bytes;

        public Task<Delivery[]> ProduceAsync(IReadOnlyList<OutgoingReading> readings, string transport, DateTimeOffset receivedAt, TimeSpan wait, CancellationToken cancellation)
        {
            foreach (var reading in readings) Release(ReadingProducer.RecordBytes(reading.Envelope.Length));
            if (Answer == Delivery.Acknowledged) Produced.AddRange(readings);
            return Task.FromResult(readings.Select(_ => Answer).ToArray());
        }

        public Task DeadLetterAsync(string? device, ReadOnlyMemory<byte> original, string reason, string detail, string source, CancellationToken cancellation) => Task.CompletedTask;
    }
}
