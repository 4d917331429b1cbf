using Pipeline.Core.Signals;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Pipeline.Cli.Simulator.Models;
using Pipeline.Cli.Simulator.Replay;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Core.Registry;

namespace Pipeline.Cli.Simulator;

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
/// must continue from — keys, sequence numbers, registration, where each vehicle was — in a file under the state folder.
/// </summary>
public sealed class Fleet
{
    private readonly string _stateFile;

    private Fleet(string stateFile, List<SimulatedDevice> devices, List<SimulatedDevice> unregistered, Dictionary<string, VehicleModel> vehicles)
    {
        _stateFile = stateFile;
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
        Directory.CreateDirectory(options.StateDirectory);
        var stateFile = Path.Combine(options.StateDirectory, $"fleet-seed-{options.Seed}.json");
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
            devices.Add(Restore(new SimulatedDevice(name, Key(options.Seed, name, saved), Owner(options.Seed, i, saved, name), DeviceKind.Vehicle, metadata,
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
            devices.Add(Restore(new SimulatedDevice(name, Key(options.Seed, name, saved), Owner(options.Seed, options.Vehicles + i, saved, name), DeviceKind.Weather, metadata,
                new StationSource(model, interval.Station, start, seed)), saved));
        }

        foreach (var path in options.Replay)
        {
            foreach (var recorded in RecordedFiles.Load(path))
            {
                var name = "replay:" + recorded.SourceId;
                devices.Add(Restore(new SimulatedDevice(name, Key(options.Seed, name, saved), Owner(options.Seed, 100_000 + devices.Count, saved, name), recorded.Kind,
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
            return new SimulatedDevice(name, Key(options.Seed, name, saved), Owner(options.Seed, -1 - i, saved, name), DeviceKind.Vehicle, VehicleMetadata(seed, false), new VehicleSource(model, seed, interval.Vehicle, start));
        }).ToList();
        return new Fleet(stateFile, devices, unregistered, vehicles);
    }

    /// <summary>
    /// Writes keys, sequence numbers and vehicle positions, so the next run continues. While running, the saved
    /// sequence numbers are <paramref name="reserve"/> ahead of the devices': a run killed before its next save must not
    /// leave the next one reusing seqs it already signed, which the processors would take for equivocation.
    /// </summary>
    public void Save(long reserve = 0)
    {
        var state = Devices.Concat(Unregistered).ToDictionary(d => d.Name, d =>
        {
            Vehicles.TryGetValue(d.Name, out var vehicle);
            return new DeviceState(d.Key.ToHex(), d.Owner.ToHex(), d.Seq + reserve, vehicle?.Position.Latitude, vehicle?.Position.Longitude, vehicle?.OdometerKm, vehicle?.FuelPercent);
        });
        var temporary = _stateFile + ".tmp";
        File.WriteAllText(temporary, JsonSerializer.Serialize(state, new JsonSerializerOptions { WriteIndented = true }));
        File.Move(temporary, _stateFile, overwrite: true);
    }

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

    private static EthKey Key(int seed, string name, Dictionary<string, DeviceState> saved) =>
        saved.TryGetValue(name, out var state) ? EthKey.FromHex(state.Key) : EthKey.FromSeed(Encoding.UTF8.GetBytes($"depin-sim:{seed}:{name}"));

    /// <summary>Owners hold three devices each, as people with a car and a station or two do.</summary>
    private static EthKey Owner(int seed, int index, Dictionary<string, DeviceState> saved, string name) =>
        saved.TryGetValue(name, out var state) ? EthKey.FromHex(state.Owner) : EthKey.FromSeed(Encoding.UTF8.GetBytes($"depin-sim:{seed}:owner:{index / 3}"));

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
