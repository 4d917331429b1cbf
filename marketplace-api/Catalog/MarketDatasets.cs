using Pipeline.Core.Envelope;
using Pipeline.Marketplace.Sandbox;
using Pipeline.Projections.Lake;

namespace Pipeline.Marketplace.Catalog;

/// <summary>A dataset buyers can find and buy: the lake dataset, the columns a grant restricts, the kind of device behind it.</summary>
public sealed record MarketDataset(string Name, string Description, DeviceKind Kind, LakeDataset Lake, TableShape Shape);

/// <summary>The datasets for sale. Rejections stay out: they describe devices' faults, not the world.</summary>
public static class MarketDatasets
{
    public static IReadOnlyList<MarketDataset> All { get; } =
    [
        new(LakeDatasets.VehicleSignals, "Accepted vehicle readings (OBD-II decoded to VSS signals), one row per signed reading; positions coarsened.", DeviceKind.Vehicle, LakeDatasets.Vehicle, TableShape.VehicleSignals),
        new(LakeDatasets.WeatherObservations, "Accepted weather-station readings, one row per signed reading, with the station's registered position.", DeviceKind.Weather, LakeDatasets.Weather, TableShape.WeatherObservations),
    ];

    public static MarketDataset? Find(string name) => All.FirstOrDefault(d => d.Name == name);
}
