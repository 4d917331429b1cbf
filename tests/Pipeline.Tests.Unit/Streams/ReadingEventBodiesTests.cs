using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using CsCheck;
using Marten;
using Pipeline.Core.Envelope;
using Pipeline.Core.Events;
using Pipeline.Infra.Postgres;
using Pipeline.Streams.Processing;

namespace Pipeline.Tests.Unit.Streams;

/// <summary>
/// The processors write the bodies of their reading events by hand (issue 16); the lake and every reader parse them
/// as Marten's serializer wrote the records before, so for any reading the two must be the same JSON.
/// </summary>
public sealed class ReadingEventBodiesTests
{
    private static readonly ISerializer Marten = EventStore.Options("bodies").Serializer();

    private static readonly string[] OddNames =
        ["Vehicle.Speed", "", " ", "a\"b", "back\\slash", "</script>", "<&>'+", "tab\there", "line\nbreak", "\u0000nul", "\u007f\u0085\u2028\u2029",
         "émoji 🚗", "日本語", "\uFEFFbom", "signals", "readingId", new string('x', 2000)];

    private static readonly Gen<string> Text = Gen.OneOf(
        Gen.OneOf<string>(OddNames),
        Gen.Char.Array[0, 60].Select(c => new string(c)).Where(s => !s.Any(char.IsSurrogate)));

    private static readonly Gen<double> Finite = Gen.OneOf(
        Gen.Double.Where(double.IsFinite),
        Gen.OneOf<double>(0.0, -0.0, double.MaxValue, double.MinValue, double.Epsilon, -double.Epsilon, 1e-300, 123456789.123456789, 0.1 + 0.2, 1e21, -1e-7));

    private static readonly Gen<DateTimeOffset> Time = Gen.Select(
        Gen.Long[DateTimeOffset.MinValue.UtcTicks + TimeSpan.TicksPerDay, DateTimeOffset.MaxValue.UtcTicks - TimeSpan.TicksPerDay],
        Gen.Int[-14 * 60, 14 * 60],
        (ticks, minutes) => new DateTimeOffset(ticks, TimeSpan.Zero).ToOffset(TimeSpan.FromMinutes(minutes)));

    private static readonly Gen<long> Number = Gen.OneOf(Gen.Long[0, long.MaxValue], Gen.OneOf<long>(0L, long.MaxValue));

    [Fact]
    public void Add_AnyAcceptedReading_IsTheJsonMartensSerializerWritesForItsRecord()
    {
        Gen.Select(Gen.Byte.Array[0, 300], Number, Time, Time, Gen.Dictionary(Text, Finite)[0, 30], Gen.Int[0, int.MaxValue], Number)
            .Sample((payload, seq, deviceTime, receivedAt, signals, partition, offset) =>
            {
                var outcome = Outcome(payload, seq, deviceTime, receivedAt, partition, offset, Verdict.Accepted, signals, null);
                var record = new ReadingAccepted(outcome.Reading!.Id, seq, deviceTime, receivedAt, signals, partition, offset);
                AssertSameJson(Marten.ToJson(record), Body(outcome));
            }, iter: 2_000);
    }

    [Fact]
    public void Add_AnyRejectedReading_IsTheJsonMartensSerializerWritesForItsRecord()
    {
        Gen.Select(Gen.Byte.Array[0, 300], Number, Gen.OneOf<ReasonCode>(Enum.GetValues<ReasonCode>()), Text, Time, Gen.Int[0, int.MaxValue], Number)
            .Sample((payload, seq, reason, detail, receivedAt, partition, offset) =>
            {
                var rejection = new Rejection(reason, detail);
                var outcome = Outcome(payload, seq, receivedAt, receivedAt, partition, offset, Verdict.RejectedSigned, null, rejection);
                var record = new ReadingRejected(outcome.Reading!.Id, seq, reason.ToWire(), rejection.Detail, receivedAt, partition, offset);
                AssertSameJson(Marten.ToJson(record), Body(outcome));
            }, iter: 2_000);
    }

    [Fact]
    public void Add_ManyBodies_EachReadsBackAsItsOwnRecord()
    {
        using var bodies = new ReadingEventBodies();
        var outcomes = Enumerable.Range(0, 500).Select(i => Outcome(Encoding.UTF8.GetBytes($"reading {i}"), i, DateTimeOffset.UnixEpoch.AddSeconds(i), DateTimeOffset.UnixEpoch.AddSeconds(i + 1), i % 7, i * 3L,
            i % 5 == 0 ? Verdict.RejectedSigned : Verdict.Accepted, new Dictionary<string, double> { ["Vehicle.Speed"] = i }, new Rejection(ReasonCode.Teleport, $"jump {i}"))).ToList();
        foreach (var outcome in outcomes) bodies.Add(outcome);

        var written = bodies.ToArray();
        Assert.Equal(outcomes.Count, written.Length);
        for (var i = 0; i < outcomes.Count; i++)
        {
            if (outcomes[i].Verdict == Verdict.Accepted)
            {
                var accepted = JsonSerializer.Deserialize<ReadingAccepted>(written[i].Span, JsonSerializerOptions.Web)!;
                Assert.Equal((outcomes[i].Reading!.Id, (long)i, (double)i, i * 3L), (accepted.ReadingId, accepted.Seq, accepted.Signals["Vehicle.Speed"], accepted.Offset));
            }
            else
            {
                var rejected = JsonSerializer.Deserialize<ReadingRejected>(written[i].Span, JsonSerializerOptions.Web)!;
                Assert.Equal((outcomes[i].Reading!.Id, $"jump {i}", i * 3L), (rejected.ReadingId, rejected.Detail, rejected.Offset));
            }
        }
    }

    private static Outcome Outcome(byte[] payload, long seq, DateTimeOffset deviceTime, DateTimeOffset receivedAt, int partition, long offset, Verdict verdict, Dictionary<string, double>? signals, Rejection? rejection)
    {
        var content = new ReadingPayload(default, seq, deviceTime, DeviceKind.Vehicle, signals ?? [], []);
        var reading = new SignedReading(payload, payload, new byte[65], content);
        var message = new RawMessage("raw", partition, offset, null, payload, receivedAt);
        return verdict == Verdict.Accepted
            ? new Outcome(message, verdict, reading, "0xdevice", signals, null)
            : new Outcome(message, verdict, reading, "0xdevice", null, rejection);
    }

    private static string Body(Outcome outcome)
    {
        using var bodies = new ReadingEventBodies();
        bodies.Add(outcome);
        return Encoding.UTF8.GetString(bodies.ToArray().Single().Span);
    }

    private static void AssertSameJson(string expected, string actual) =>
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(expected), JsonNode.Parse(actual)), $"Marten's serializer wrote\n{expected}\nthe processors wrote\n{actual}");
}
