using Pipeline.Simulator;

namespace Pipeline.Tests.Unit.Simulator;

public sealed class FleetStateTests : IDisposable
{
    private readonly string _state = Directory.CreateTempSubdirectory("depin-fleet-").FullName;
    private static readonly DateTimeOffset Start = new(2026, 11, 23, 12, 0, 0, TimeSpan.Zero);

    private SimulatorOptions Options => new() { Vehicles = 3, Stations = 2, StateDirectory = _state, Seed = 5 };

    [Fact]
    public void FinalSave_ContinuesEachDeviceAtItsNextSeq()
    {
        var fleet = Fleet.Create(Options, Start);
        for (var i = 0; i < fleet.Devices.Count; i++) fleet.Devices[i].Seq = 10 + i;
        fleet.Save();
        fleet.Dispose();

        using var again = Fleet.Create(Options, Start);
        Assert.Equal(fleet.Devices.Select(d => (d.Address, d.Seq)), again.Devices.Select(d => (d.Address, d.Seq)));
    }

    [Fact]
    public void SaveWhileRunning_ReservesSeqs_SoARunKilledBeforeItsNextSaveIsNotContinuedWithUsedOnes()
    {
        var fleet = Fleet.Create(Options, Start);
        foreach (var device in fleet.Devices) device.Seq = 40;
        fleet.Save(reserve: 1_000);
        // Killed here after signing more readings than were saved: the next run starts beyond all of them.
        foreach (var device in fleet.Devices) device.Seq = 900;
        fleet.Dispose();

        using var again = Fleet.Create(Options, Start);
        Assert.All(again.Devices, d => Assert.Equal(1_040, d.Seq));
    }

    [Fact]
    public void StateInUse_RefusesASecondFleetOfTheSameSeed_NamingTheSeedToUse()
    {
        using var first = Fleet.Create(Options, Start);

        var refused = Assert.Throws<InvalidOperationException>(() => Fleet.Create(Options, Start));
        Assert.Contains("--seed 5 is in use by", refused.Message);
        Assert.Contains($"pid {Environment.ProcessId}", refused.Message);
        Assert.Contains("run this one with --seed 6", refused.Message);
        Assert.DoesNotContain('\n', refused.Message);
        using var other = Fleet.Create(Options with { Seed = 6 }, Start);
    }

    [Fact]
    public void NamedFleet_HasKeysAndStateOfItsOwn_BesideTheSeedOfTheSameNumber()
    {
        using var seeded = Fleet.Create(Options, Start);
        using var named = Fleet.Create(Options with { Name = "up" }, Start);

        Assert.Empty(seeded.Devices.Select(d => d.Address).Intersect(named.Devices.Select(d => d.Address)));
        Assert.Empty(seeded.Devices.Select(d => d.Owner.Address).Intersect(named.Devices.Select(d => d.Owner.Address)));
        named.Save();
        seeded.Save();
        Assert.True(File.Exists(Path.Combine(_state, "fleet-up.json")));
        Assert.True(File.Exists(Path.Combine(_state, "fleet-seed-5.json")));
    }

    [Fact]
    public void Save_KeepsTheStateOfDevicesThisRunDidNotUse()
    {
        using (var big = Fleet.Create(Options with { Vehicles = 6 }, Start))
        {
            foreach (var device in big.Devices) device.Seq = 70;
            big.Save();
        }
        using (var small = Fleet.Create(Options with { Vehicles = 1, Stations = 0 }, Start))
        {
            small.Devices[0].Seq = 90;
            small.Save();
        }

        using var again = Fleet.Create(Options with { Vehicles = 6 }, Start);
        Assert.Equal(90, again.Devices.Single(d => d.Name == "vehicle-0").Seq);
        Assert.All(again.Devices.Where(d => d.Name != "vehicle-0"), d => Assert.Equal(70, d.Seq));
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public void State_HoldsPrivateKeys_SoOnlyItsOwnerMayReadIt()
    {
        using var fleet = Fleet.Create(Options, Start);
        fleet.Save(reserve: 10);

        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(_state, "fleet-seed-5.json")));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(_state));
    }

    public void Dispose() => Directory.Delete(_state, recursive: true);
}
