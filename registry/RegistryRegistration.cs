using JasperFx.Events.Projections;
using Marten;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;

namespace Pipeline.Registry;

public static class RegistryRegistration
{
    /// <summary>
    /// The registry's document and projection in the event store. Every process that opens the store adds them (the
    /// processors and the lake read devices), so each sees the same schema; adding them twice adds them once.
    /// </summary>
    public static IServiceCollection AddRegistryDocuments(this IServiceCollection services)
    {
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConfigureMarten, RegistryDocuments>());
        return services;
    }

    /// <summary>The registry API's services: registrations and transfers, the network they are signed for, the limits on writes.</summary>
    public static IServiceCollection AddRegistry(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddRegistryDocuments();
        services.AddOptions<NetworkOptions>()
            .Bind(configuration.GetSection(NetworkOptions.Section))
            .Validate(o => !string.IsNullOrWhiteSpace(o.Name) && o.ChainId > 0, "Network:Name must not be empty and Network:ChainId must be positive.")
            .ValidateOnStart();
        services.AddSingleton<DeviceRegistry>();
        services.AddRegistryLimits(configuration);
        return services;
    }

    /// <summary>The validators' in-memory view of the registry, kept current by notifications.</summary>
    public static IServiceCollection AddDeviceDirectory(this IServiceCollection services)
    {
        services.AddRegistryDocuments();
        services.TryAddSingleton<DeviceDirectory>();
        services.AddHostedService(provider => provider.GetRequiredService<DeviceDirectory>());
        return services;
    }

    private sealed class RegistryDocuments : IConfigureMarten
    {
        public void Configure(IServiceProvider services, StoreOptions options)
        {
            options.Projections.Add<DeviceProjection>(ProjectionLifecycle.Inline);
            options.Schema.For<Device>().Index(d => d.Owner).Index(d => d.UpdatedAt);
        }
    }
}
