using Pipeline.Core.Envelope;

namespace Pipeline.Simulator.Replay;

/// <summary>A sample as a reader finds it: at an absolute instant, before the file's devices are aligned.</summary>
internal sealed record TimedSample(DateTimeOffset At, Dictionary<string, double> Signals, List<string> Obd);

/// <summary>A device as a reader finds it, samples still carrying absolute instants.</summary>
internal sealed record TimedDevice(string SourceId, DeviceKind Kind, IReadOnlyDictionary<string, string> Metadata, List<TimedSample> Samples);

internal static class RecordedTimeline
{
    /// <summary>
    /// Turns absolute instants into offsets from the earliest sample of the whole file, so that stations recorded side
    /// by side are replayed side by side.
    /// </summary>
    public static IReadOnlyList<RecordedDevice> AlignToEarliest(IReadOnlyList<TimedDevice> devices, string fileName)
    {
        DateTimeOffset? earliest = null;
        foreach (var device in devices)
        {
            foreach (var sample in device.Samples)
            {
                if (earliest is null || sample.At < earliest) earliest = sample.At;
            }
        }
        if (earliest is null) throw new InvalidDataException($"{fileName} holds no samples.");

        var aligned = new List<RecordedDevice>(devices.Count);
        foreach (var device in devices)
        {
            // A replay sends samples in offset order; a stable sort keeps the recorded order of equal instants.
            var samples = device.Samples
                .OrderBy(s => s.At)
                .Select(s => new RecordedSample(s.At - earliest.Value, s.Signals, s.Obd))
                .ToList();
            aligned.Add(new RecordedDevice(device.SourceId, device.Kind, device.Metadata, samples));
        }
        return aligned;
    }
}
