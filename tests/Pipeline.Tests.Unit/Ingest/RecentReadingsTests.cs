using System.Text;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Ingest.Gateway;

namespace Pipeline.Tests.Unit.Ingest;

public sealed class RecentReadingsTests
{
    private readonly ManualClock _clock = new(DateTimeOffset.Parse("2026-11-23T19:00:00Z", System.Globalization.CultureInfo.InvariantCulture));

    [Fact]
    public void Added_IsRemembered_UntilTheWindowHasPassed()
    {
        var recent = new RecentReadings(1_000, TimeSpan.FromMinutes(10), _clock);
        var key = new UInt128(1, 2);
        Assert.False(recent.Contains(key));
        recent.Add(key);
        _clock.Advance(TimeSpan.FromMinutes(4));
        Assert.True(recent.Contains(key));
        _clock.Advance(TimeSpan.FromMinutes(6));
        Assert.False(recent.Contains(key));
    }

    [Fact]
    public void Remembered_AcrossOneTurnOver_ForgottenAtTheSecond()
    {
        var recent = new RecentReadings(1_000, TimeSpan.FromMinutes(10), _clock);
        var key = new UInt128(7, 7);
        recent.Add(key);
        _clock.Advance(TimeSpan.FromMinutes(5));
        recent.Add(new UInt128(8, 8));
        Assert.True(recent.Contains(key));
        _clock.Advance(TimeSpan.FromMinutes(5));
        recent.Add(new UInt128(9, 9));
        Assert.False(recent.Contains(key));
        Assert.True(recent.Contains(new UInt128(8, 8)));
    }

    [Fact]
    public void ManyMoreThanTheCapacity_KeepAtMostTheCapacity_AndTheNewestAreRemembered()
    {
        var recent = new RecentReadings(3_200, TimeSpan.FromHours(1), _clock);
        var random = new Random(10);
        var keys = Enumerable.Range(0, 50_000).Select(_ => new UInt128((ulong)random.NextInt64(), (ulong)random.NextInt64())).ToList();
        foreach (var key in keys) recent.Add(key);
        Assert.InRange(recent.Count, 1, 3_200);
        // Each shard keeps at least its current generation: the last few hundred are all there.
        Assert.All(keys.TakeLast(100), key => Assert.True(recent.Contains(key)));
        Assert.False(recent.Contains(keys[0]));
    }

    [Fact]
    public void Key_IsTheSameForTheSameSignedBytesInAnySpelling_AndDiffersForAnotherSignature()
    {
        var key = EthKey.FromSeed("recent-key"u8);
        var payload = ReadingWriter.Payload(key.Address, 1, _clock.GetUtcNow(), DeviceKind.Vehicle, [new("Vehicle.Speed", 50)]);
        var envelope = ReadingWriter.Sign(key, payload);
        var signature = Hex.Encode0x(key.SignPersonal(Encoding.UTF8.GetBytes(payload)));

        // The same reading with v as 0/1 instead of 27/28, spaced out differently: the same key.
        var v = Convert.ToInt32(signature[^2..], 16) - 27;
        var respelled = Encoding.UTF8.GetBytes($"{{ \"sig\" : \"{signature[..^2]}{v:x2}\", \"payload\" : {System.Text.Json.JsonSerializer.Serialize(payload)} }}");
        Assert.Equal(KeyOf(envelope), KeyOf(respelled));

        // The same payload with a signature someone made up: another key, so it cannot pass for the device's copy.
        var forged = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(envelope).Replace(signature, "0x" + new string('1', 128) + "1b"));
        Assert.NotEqual(KeyOf(envelope), KeyOf(forged));
    }

    private static UInt128 KeyOf(byte[] envelope) => RecentReadings.KeyOf(EnvelopeParser.Parse(envelope, EnvelopeLimits.Default).Reading!);

    private sealed class ManualClock(DateTimeOffset start) : TimeProvider
    {
        private DateTimeOffset _now = start;

        public override DateTimeOffset GetUtcNow() => _now;

        public void Advance(TimeSpan by) => _now += by;
    }
}
