using System.Text;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Core.Signals;
using V = Pipeline.Core.Signals.SignalCatalog.Vehicle;
using W = Pipeline.Core.Signals.SignalCatalog.Weather;

namespace Pipeline.Simulator;

/// <summary>A signed reading on its way out, with the ledger entry that says what the pipeline owes it.</summary>
public sealed record Outgoing(SimulatedDevice Device, byte[] Envelope, LedgerEntry Entry);

/// <summary>
/// Turns a device's sample into what it sends: normally one signed reading; on request, at the configured rate, a
/// misbehaving one (or pair) with the outcome the pipeline must give it recorded in the ledger.
/// </summary>
public sealed class Misbehaver(SimulatorOptions options, Fleet fleet, Ledger ledger)
{
    private TransportMode _transport;

    public const string Accepted = "accepted";
    public const string Duplicate = "duplicate";

    private readonly Random _random = new(options.Seed);
    private readonly Misbehaviour[] _enabled = Enum.GetValues<Misbehaviour>().Where(m => m is not (Misbehaviour.None or Misbehaviour.All) && options.Misbehave.HasFlag(m)).ToArray();
    private readonly EthKey _impostor = EthKey.FromSeed(Encoding.UTF8.GetBytes($"{options.KeyPrefix}:impostor"));
    private int _alternate;
    private bool _refusedOverMqtt;

    /// <summary>What <paramref name="device"/> sends now over <paramref name="transport"/> (its own, or the lane it rides).</summary>
    public IEnumerable<Outgoing> Emit(SimulatedDevice device, TransportMode transport, DateTimeOffset now, Dictionary<string, double> signals, List<string> obd)
    {
        _transport = transport;
        var misbehaviour = Choose(device, signals);
        switch (misbehaviour)
        {
            case Misbehaviour.Dup:
            {
                var reading = Sign(device, now, signals, obd, misbehaviour);
                yield return reading;
                yield return Again(reading.Device, reading.Entry, reading.Envelope, misbehaviour);
                break;
            }
            case Misbehaviour.Old:
            {
                yield return Sign(device, now, signals, obd, null);
                var old = device.History[_random.Next(0, device.History.Count - 4)];
                yield return Again(device, new LedgerEntry(device.Address, old.Seq, old.Id, "", Duplicate, null), old.Envelope, misbehaviour);
                break;
            }
            case Misbehaviour.Seq:
            {
                var reading = Sign(device, now, signals, obd, null);
                yield return reading;
                // Same device and seq, a different payload: the device signs two versions of one reading. Only the
                // time differs, so no other check can refuse the second version first.
                yield return Build(device, reading.Entry.Seq, now.AddMilliseconds(1), signals, obd, "seq_conflict", misbehaviour, remember: false);
                break;
            }
            case Misbehaviour.Sig:
            {
                var seq = ++device.Seq;
                var payload = ReadingWriter.Payload(device.Key.Address, seq, now, device.Kind, signals, obd);
                var bytes = Encoding.UTF8.GetBytes(payload);
                string expected;
                byte[] signature;
                if (_alternate++ % 2 == 0)
                {
                    signature = _impostor.SignPersonal(bytes);
                    expected = "signer_mismatch";
                }
                else
                {
                    signature = device.Key.SignPersonal(bytes);
                    signature[64] = 29; // no such recovery byte
                    expected = "bad_signature";
                }
                yield return Record(new Outgoing(device, EnvelopeParser.Encode(payload, signature), new LedgerEntry(device.Address, seq, ReadingWriter.IdOf(payload), "", expected, Name(misbehaviour))));
                break;
            }
            case Misbehaviour.Unregistered:
            {
                var stranger = fleet.Unregistered[_random.Next(fleet.Unregistered.Count)];
                yield return Build(stranger, ++stranger.Seq, now, signals, obd, "unknown_device", misbehaviour, remember: false);
                break;
            }
            case Misbehaviour.Range:
            {
                var wrong = new Dictionary<string, double>(signals);
                if (device.Kind == DeviceKind.Vehicle)
                {
                    obd = obd.Where(r => !r.StartsWith("410D", StringComparison.Ordinal)).ToList();
                    wrong[V.Speed] = 480;
                }
                else
                {
                    wrong[W.Humidity] = 135;
                }
                yield return Build(device, ++device.Seq, now, wrong, obd, "out_of_range", misbehaviour, remember: false);
                break;
            }
            case Misbehaviour.Skew:
            {
                var stale = _alternate++ % 2 == 0;
                var time = stale ? now.AddDays(-30) : now.AddHours(1);
                yield return Build(device, ++device.Seq, time, signals, obd, stale ? "stale" : "future", misbehaviour, remember: false);
                break;
            }
            case Misbehaviour.Teleport:
            {
                var jumped = new Dictionary<string, double>(signals) { [V.Latitude] = Math.Clamp(signals[V.Latitude] + 4.5, -89, 89) };
                yield return Build(device, ++device.Seq, now, jumped, obd, "teleport", misbehaviour, remember: false);
                break;
            }
            case Misbehaviour.Malformed:
            {
                var seq = ++device.Seq;
                var envelope = ReadingWriter.Sign(device.Key, ReadingWriter.Payload(device.Key.Address, seq, now, device.Kind, signals, obd));
                // Cut off mid-signature: not JSON any more, so no reading id either.
                yield return Record(new Outgoing(device, envelope[..^12], new LedgerEntry(device.Address, seq, null, "", "malformed", Name(misbehaviour))));
                break;
            }
            default:
                yield return Sign(device, now, signals, obd, null);
                break;
        }
    }

    private Misbehaviour Choose(SimulatedDevice device, Dictionary<string, double> signals)
    {
        if (_enabled.Length == 0 || _random.NextDouble() >= options.MisbehaveRate) return Misbehaviour.None;
        // The first misbehaviour over MQTT is one the edge itself must refuse, so a short run always exercises the
        // edge's own dead letters whatever the draw.
        if (_transport == TransportMode.Mqtt && !_refusedOverMqtt && _enabled.Contains(Misbehaviour.Malformed))
        {
            _refusedOverMqtt = true;
            return Misbehaviour.Malformed;
        }
        var candidates = _enabled.Where(m => m switch
        {
            Misbehaviour.Old => device.History.Count >= 5,
            Misbehaviour.Seq => signals.Count > 0,
            Misbehaviour.Teleport => signals.ContainsKey(V.Latitude) && device.History.Count > 0,
            Misbehaviour.Unregistered => fleet.Unregistered.Count > 0,
            _ => true,
        }).ToArray();
        return candidates.Length == 0 ? Misbehaviour.None : candidates[_random.Next(candidates.Length)];
    }

    private Outgoing Sign(SimulatedDevice device, DateTimeOffset now, Dictionary<string, double> signals, List<string> obd, Misbehaviour? misbehaviour) =>
        Build(device, ++device.Seq, now, signals, obd, Accepted, misbehaviour, remember: true);

    private Outgoing Build(SimulatedDevice device, long seq, DateTimeOffset time, Dictionary<string, double> signals, List<string> obd, string expected, Misbehaviour? misbehaviour, bool remember)
    {
        var payload = ReadingWriter.Payload(device.Key.Address, seq, time, device.Kind, signals, obd);
        var envelope = ReadingWriter.Sign(device.Key, payload);
        var id = ReadingWriter.IdOf(payload);
        // A well-behaved reading can still carry a bad value — recordings do (EWR's 1048 mph wind): the ledger owes it
        // the processors' answer.
        if (expected == Accepted) expected = OutOfRange(envelope) ?? Accepted;
        if (remember)
        {
            device.History.Add((seq, id, envelope));
            if (device.History.Count > 50) device.History.RemoveAt(0);
        }
        return Record(new Outgoing(device, envelope, new LedgerEntry(device.Address, seq, id, "", expected, misbehaviour is { } m ? Name(m) : null)));
    }

    private static string? OutOfRange(byte[] envelope)
    {
        var content = EnvelopeParser.Parse(envelope, EnvelopeLimits.Default).Reading!.Content;
        var (signals, rejection) = Plausibility.Decode(content);
        return (rejection ?? Plausibility.CheckSignals(content.Kind, signals!))?.Code.ToWire();
    }

    private Outgoing Again(SimulatedDevice device, LedgerEntry original, byte[] envelope, Misbehaviour misbehaviour) =>
        Record(new Outgoing(device, envelope, original with { Expected = Duplicate, Misbehaviour = Name(misbehaviour) }));

    private Outgoing Record(Outgoing outgoing)
    {
        var entry = outgoing.Entry with { Transport = _transport == TransportMode.Mqtt ? "mqtt" : "http" };
        ledger.Add(entry);
        return outgoing with { Entry = entry };
    }

    private static string Name(Misbehaviour misbehaviour) => misbehaviour.ToString().ToLowerInvariant();
}
