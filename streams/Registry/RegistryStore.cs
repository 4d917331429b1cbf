using JasperFx.Events.Projections;
using Marten;

namespace Pipeline.Streams.Registry;

public static class RegistryStore
{
    /// <summary>Adds the registry's projection and document to the event store.</summary>
    public static void AddRegistry(this StoreOptions options)
    {
        options.Projections.Add<DeviceProjection>(ProjectionLifecycle.Inline);
        options.Schema.For<Device>().Index(d => d.Owner).Index(d => d.UpdatedAt);
    }
}
