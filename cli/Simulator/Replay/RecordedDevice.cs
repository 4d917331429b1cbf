using Pipeline.Core.Envelope;

namespace Pipeline.Cli.Simulator.Replay;

/// <summary>A device found in a recorded file: a stable source id, its kind and registration metadata, and its samples in recorded order.</summary>
/// <param name="SourceId">Stable within the file (e.g. "envirocar:track_1", "nycflights13:EWR"); the simulator derives the device key from it.</param>
/// <param name="Metadata">Vehicles: make, model, year, firmware. Stations: latitude, longitude, elevation (m), model.</param>
public sealed record RecordedDevice(string SourceId, DeviceKind Kind, IReadOnlyDictionary<string, string> Metadata, IReadOnlyList<RecordedSample> Samples);

/// <summary>
/// One recorded sample. <paramref name="Offset"/> is the time since the earliest sample of the whole file, so that devices
/// of one file stay aligned. Signals use the pipeline's names and units (SignalCatalog); raw OBD-II mode 01 responses
/// ("410C1AF8") stand in for signals a dongle reads from the engine.
/// </summary>
public sealed record RecordedSample(TimeSpan Offset, IReadOnlyDictionary<string, double> Signals, IReadOnlyList<string> Obd);
