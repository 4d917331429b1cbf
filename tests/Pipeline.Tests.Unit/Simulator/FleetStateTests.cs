using Pipeline.Cli.Simulator;

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

        var again = Fleet.Create(Options, Start);
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

        var again = Fleet.Create(Options, Start);
        Assert.All(again.Devices, d => Assert.Equal(1_040, d.Seq));
    }

    public void Dispose() => Directory.Delete(_state, recursive: true);
}
