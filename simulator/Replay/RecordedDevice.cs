using Pipeline.Core.Envelope;

namespace Pipeline.Simulator.Replay;

/// <summary>
/// A device found in a recorded file: a stable source id (e.g. "envirocar:track_1", "nycflights13:EWR") from which the
/// simulator derives its key, its kind, registration metadata (vehicles: make, model, year, firmware; stations:
/// latitude, longitude, elevation in m, model) and its samples in recorded order.
/// </summary>
public sealed record RecordedDevice(string SourceId, DeviceKind Kind, IReadOnlyDictionary<string, string> Metadata, IReadOnlyList<RecordedSample> Samples);

/// <summary>
/// One recorded sample. Offset is the time since the earliest sample of the whole file, so that devices
/// of one file stay aligned. Signals use the pipeline's names and units (SignalCatalog); raw OBD-II mode 01 responses
/// ("410C1AF8") stand in for signals a dongle reads from the engine.
/// </summary>
public sealed record RecordedSample(TimeSpan Offset, IReadOnlyDictionary<string, double> Signals, IReadOnlyList<string> Obd);
