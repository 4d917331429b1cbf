using Pipeline.Core.Signals;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Pipeline.Simulator.Models;
using Pipeline.Simulator.Replay;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Core.Registry;
using Pipeline.Core.Files;

namespace Pipeline.Simulator;

/// <summary>What a device reports next: its signals and raw OBD responses, or nothing when it has nothing to say.</summary>
public interface IReadingSource
{
    /// <summary>The readings due at <paramref name="now"/>; the source advances its own physics to that time.</summary>
    (Dictionary<string, double> Signals, List<string> Obd)? Sample(DateTimeOffset now);

    DateTimeOffset NextDue { get; }

    bool Finished { get; }
}

/// <summary>A simulated device: its key, its owner's wallet, what it reports, and its sequence number.</summary>
public sealed class SimulatedDevice(string name, EthKey key, EthKey owner, DeviceKind kind, Dictionary<string, string> metadata, IReadingSource source)
{
    public string Name { get; } = name;
    public EthKey Key { get; } = key;
    public EthKey Owner { get; } = owner;
    public DeviceKind Kind { get; } = kind;
    public Dictionary<string, string> Metadata { get; } = metadata;
    public IReadingSource Source { get; } = source;
    public string Address => Key.Address.ToLowerHex();
    public long Seq { get; set; }
    public TransportMode Transport { get; set; } = TransportMode.Http;

    /// <summary>Recent envelopes with their ids, for duplicates and replays of old readings.</summary>
    public List<(long Seq, string Id, byte[] Envelope)> History { get; } = [];

    public RegistrationMessage RegistrationMessage(DateTimeOffset now, Eip712Domain network) => new(Key.Address, Owner.Address, Kind, Metadata, now, network);
}

/// <summary>
/// Builds the fleet from a seed (keys derive from it, so the same seed is the same fleet) and keeps the state a restart
/// must continue from — keys, sequence numbers, registration, where each vehicle was — in a file under the state folder,
/// readable by its owner only. While a fleet runs its state is locked: two processes signing as the same devices would
/// reuse each other's sequence numbers and contradict each other's positions.
/// </summary>
public sealed class Fleet : IDisposable
{
    private readonly string _stateFile;
    private readonly LockFile _lock;
    private readonly Dictionary<string, DeviceState> _saved;

    private Fleet(string stateFile, LockFile stateLock, Dictionary<string, DeviceState> saved, List<SimulatedDevice> devices, List<SimulatedDevice> unregistered, Dictionary<string, VehicleModel> vehicles)
    {
        _stateFile = stateFile;
        _lock = stateLock;
        _saved = saved;
        Devices = devices;
        Unregistered = unregistered;
        Vehicles = vehicles;
    }

    public IReadOnlyList<SimulatedDevice> Devices { get; }

    /// <summary>Devices that never register: their readings must come back unknown_device.</summary>
    public IReadOnlyList<SimulatedDevice> Unregistered { get; }

    public IReadOnlyDictionary<string, VehicleModel> Vehicles { get; }

    public static Fleet Create(SimulatorOptions options, DateTimeOffset start)
    {
        SecretFile.CreateFolder(options.StateDirectory);
        var stateLock = LockFile.TryAcquire(Path.Combine(options.StateDirectory, $"fleet-{options.StateName}.lock"), out var holder)
            ?? throw new InvalidOperationException(options.Name is null
                ? $"The fleet of --seed {options.Seed} is in use by {holder}; run this one with --seed {FreeSeed(options)}, or wait for that one to end."
                : $"The fleet '{options.Name}' is in use by {holder}.");
        try
        {
            return Create(options, start, stateLock);
        }
        catch
        {
            stateLock.Dispose();
            throw;
        }
    }

    private static Fleet Create(SimulatorOptions options, DateTimeOffset start, LockFile stateLock)
    {
        var stateFile = Path.Combine(options.StateDirectory, $"fleet-{options.StateName}.json");
        SecretFile.Protect(stateFile);
        var saved = File.Exists(stateFile) ? JsonSerializer.Deserialize<Dictionary<string, DeviceState>>(File.ReadAllText(stateFile)) ?? [] : [];
        var devices = new List<SimulatedDevice>();
        var vehicles = new Dictionary<string, VehicleModel>();
        var interval = Intervals(options);

        for (var i = 0; i < options.Vehicles; i++)
        {
            var name = $"vehicle-{i}";
            var seed = Seed(options.Seed, name);
            var region = Region.All[seed % Region.All.Count];
            var model = new VehicleModel(seed, region, electric: i < options.Vehicles * options.ElectricShare);
            if (saved.TryGetValue(name, out var state) && state.Latitude is { } lat && state.Longitude is { } lon) model.Restore(new GeoPoint(lat, lon), state.OdometerKm ?? model.OdometerKm, state.FuelPercent ?? model.FuelPercent);
            var metadata = VehicleMetadata(seed, model.Electric);
            devices.Add(Restore(new SimulatedDevice(name, Key(options.KeyPrefix, name, saved), Owner(options.KeyPrefix, i, saved, name), DeviceKind.Vehicle, metadata,
                new VehicleSource(model, seed, interval.Vehicle, start)), saved));
            vehicles[name] = model;
        }

        var regions = Region.All.Select((region, index) => new RegionWeather(region, Seed(options.Seed, region.Name), start)).ToList();
        for (var i = 0; i < options.Stations; i++)
        {
            var name = $"station-{i}";
            var seed = Seed(options.Seed, name);
            // Stations cluster a few to a region, so neighbours share weather.
            var model = new WeatherStationModel(seed, regions[i % Math.Min(regions.Count, Math.Max(1, (options.Stations + 2) / 3))]);
            var metadata = new Dictionary<string, string>
            {
                ["latitude"] = model.Location.Latitude.ToString("F5", CultureInfo.InvariantCulture),
                ["longitude"] = model.Location.Longitude.ToString("F5", CultureInfo.InvariantCulture),
                ["elevation"] = model.ElevationM.ToString("F0", CultureInfo.InvariantCulture),
                ["model"] = new[] { "Davis Vantage Pro2", "WeatherXM M5", "Ecowitt WS90" }[seed % 3],
            };
            devices.Add(Restore(new SimulatedDevice(name, Key(options.KeyPrefix, name, saved), Owner(options.KeyPrefix, options.Vehicles + i, saved, name), DeviceKind.Weather, metadata,
                new StationSource(model, interval.Station, start, seed)), saved));
        }

        foreach (var path in options.Replay)
        {
            foreach (var recorded in RecordedFiles.Load(path))
            {
                var name = "replay:" + recorded.SourceId;
                devices.Add(Restore(new SimulatedDevice(name, Key(options.KeyPrefix, name, saved), Owner(options.KeyPrefix, 100_000 + devices.Count, saved, name), recorded.Kind,
                    new Dictionary<string, string>(recorded.Metadata), new ReplaySource(recorded, start, options.Speedup)), saved));
            }
        }

        for (var i = 0; i < devices.Count; i++)
        {
            devices[i].Transport = options.Transport switch
            {
                TransportMode.Both => i % 2 == 0 ? TransportMode.Http : TransportMode.Mqtt,
                var mode => mode,
            };
        }

        var unregistered = Enumerable.Range(0, 3).Select(i =>
        {
            var name = $"unregistered-{i}";
            var seed = Seed(options.Seed, name);
            var model = new VehicleModel(seed, Region.All[i % Region.All.Count], electric: false);
            return new SimulatedDevice(name, Key(options.KeyPrefix, name, saved), Owner(options.KeyPrefix, -1 - i, saved, name), DeviceKind.Vehicle, VehicleMetadata(seed, false), new VehicleSource(model, seed, interval.Vehicle, start));
        }).ToList();
        return new Fleet(stateFile, stateLock, saved, devices, unregistered, vehicles);
    }

    /// <summary>The lowest seed above this one whose fleet nobody runs now.</summary>
    private static int FreeSeed(SimulatorOptions options)
    {
        for (var seed = options.Seed + 1; ; seed++)
        {
            using var free = LockFile.TryAcquire(Path.Combine(options.StateDirectory, $"fleet-seed-{seed}.lock"), out _);
            if (free is not null) return seed;
        }
    }

    /// <summary>
    /// Writes keys, sequence numbers and vehicle positions, so the next run continues. While running, the saved
    /// sequence numbers are <paramref name="reserve"/> ahead of the devices': a run killed before its next save must not
    /// leave the next one reusing seqs it already signed, which the processors would take for equivocation.
    /// </summary>
    /// <remarks>Devices of the same seed that this run did not use (a smaller fleet, another replay) keep their saved state.</remarks>
    public void Save(long reserve = 0)
    {
        var state = new Dictionary<string, DeviceState>(_saved);
        foreach (var d in Devices.Concat(Unregistered))
        {
            Vehicles.TryGetValue(d.Name, out var vehicle);
            state[d.Name] = new DeviceState(d.Key.ToHex(), d.Owner.ToHex(), d.Seq + reserve, vehicle?.Position.Latitude, vehicle?.Position.Longitude, vehicle?.OdometerKm, vehicle?.FuelPercent);
        }
        SecretFile.Write(_stateFile, JsonSerializer.Serialize(state, new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>Releases the fleet's state for the next run.</summary>
    public void Dispose() => _lock.Dispose();

    /// <summary>Report intervals: the defaults, or scaled so the whole fleet sends about <see cref="SimulatorOptions.Rate"/> per second.</summary>
    private static (TimeSpan Vehicle, TimeSpan Station) Intervals(SimulatorOptions options)
    {
        var vehicle = TimeSpan.FromSeconds(5);
        var station = TimeSpan.FromSeconds(60);
        if (options.Rate is not { } rate || rate <= 0) return (vehicle, station);
        // Driving cars report most of the time; a rough 80 % keeps the fleet near the target.
        var natural = options.Vehicles * 0.8 / vehicle.TotalSeconds + options.Stations / station.TotalSeconds;
        var factor = natural <= 0 ? 1 : rate / natural;
        return (vehicle / factor, station / factor);
    }

    private static SimulatedDevice Restore(SimulatedDevice device, Dictionary<string, DeviceState> saved)
    {
        if (saved.TryGetValue(device.Name, out var state)) device.Seq = state.Seq;
        return device;
    }

    private static EthKey Key(string prefix, string name, Dictionary<string, DeviceState> saved) =>
        saved.TryGetValue(name, out var state) ? EthKey.FromHex(state.Key) : EthKey.FromSeed(Encoding.UTF8.GetBytes($"{prefix}:{name}"));

    /// <summary>Owners hold three devices each, as people with a car and a station or two do.</summary>
    private static EthKey Owner(string prefix, int index, Dictionary<string, DeviceState> saved, string name) =>
        saved.TryGetValue(name, out var state) ? EthKey.FromHex(state.Owner) : EthKey.FromSeed(Encoding.UTF8.GetBytes($"{prefix}:owner:{index / 3}"));

    private static int Seed(int seed, string name) => (int)(BitConverter.ToUInt32(Keccak256.Hash(Encoding.UTF8.GetBytes($"{seed}:{name}")), 0) & 0x7FFFFFFF);

    private static Dictionary<string, string> VehicleMetadata(int seed, bool electric)
    {
        var (make, model) = electric
            ? new[] { ("Tesla", "Model 3"), ("Volkswagen", "ID.3"), ("Hyundai", "Kona Electric") }[seed % 3]
            : new[] { ("Volvo", "V40"), ("Toyota", "Corolla"), ("Ford", "Focus"), ("Dodge", "Caliber"), ("Skoda", "Octavia") }[seed % 5];
        return new Dictionary<string, string> { ["make"] = make, ["model"] = model, ["year"] = (2008 + seed % 17).ToString(CultureInfo.InvariantCulture), ["firmware"] = $"dongle-{1 + seed % 3}.{seed % 10}" };
    }

    private sealed record DeviceState(string Key, string Owner, long Seq, double? Latitude, double? Longitude, double? OdometerKm, double? FuelPercent);
}

/// <summary>A car reports every interval while driving; parked, it is silent.</summary>
public sealed class VehicleSource(VehicleModel model, int seed, TimeSpan interval, DateTimeOffset start) : IReadingSource
{
    private readonly IReadOnlyList<string> _raw = VehicleModel.RawObdSignals(seed);
    private DateTimeOffset _last = start;

    // Spread first reports over the interval so the fleet does not speak in chorus.
    public DateTimeOffset NextDue { get; private set; } = start + interval * (seed % 1000 / 1000.0);
    public bool Finished => false;

    public (Dictionary<string, double> Signals, List<string> Obd)? Sample(DateTimeOffset now)
    {
        model.Advance((now - _last).TotalSeconds);
        _last = now;
        NextDue = now + interval;
        if (!model.Driving) return null;
        var (signals, obd) = VehicleModel.AsDongleSends(model.Signals(), _raw);
        return (signals, obd);
    }
}

/// <summary>A station reports every interval, day and night.</summary>
public sealed class StationSource(WeatherStationModel model, TimeSpan interval, DateTimeOffset start, int seed) : IReadingSource
{
    public DateTimeOffset NextDue { get; private set; } = start + interval * (seed % 1000 / 1000.0);
    public bool Finished => false;

    public (Dictionary<string, double> Signals, List<string> Obd)? Sample(DateTimeOffset now)
    {
        NextDue = now + interval;
        return (model.Signals(now), []);
    }
}

/// <summary>A recorded device: its samples in recorded order and spacing (divided by the speed-up), re-timed to now.</summary>
public sealed class ReplaySource(RecordedDevice recorded, DateTimeOffset start, double speedup) : IReadingSource
{
    private int _next;

    public DateTimeOffset NextDue => _next < recorded.Samples.Count ? start + recorded.Samples[_next].Offset / Math.Max(speedup, 1e-6) : DateTimeOffset.MaxValue;
    public bool Finished => _next >= recorded.Samples.Count;

    public (Dictionary<string, double> Signals, List<string> Obd)? Sample(DateTimeOffset now)
    {
        if (Finished) return null;
        var sample = recorded.Samples[_next++];
        return (new Dictionary<string, double>(sample.Signals), [.. sample.Obd]);
    }
}
