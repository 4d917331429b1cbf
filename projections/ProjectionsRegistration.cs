using Marten;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Pipeline.Projections.Lake;
using Pipeline.Registry;

namespace Pipeline.Projections;

public static class ProjectionsRegistration
{
    /// <summary>The lake projector, its metrics, and what it reads (events and the registry's devices).</summary>
    public static IServiceCollection AddProjections(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddLakeOptions(configuration);
        services.AddLakeStore();
        services.AddSingleton<LakeMetrics>();
        services.AddHostedService<LakeProjector>();
        return services;
    }

    /// <summary>The lake's settings, bound and validated at start, for every area that reads the lake.</summary>
    public static IServiceCollection AddLakeOptions(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<LakeOptions>().Bind(configuration.GetSection(LakeOptions.Section)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<LakeOptions>, LakeOptionsValidation>());
        return services;
    }

    /// <summary>The lake's store and its tables alone, for commands that rebuild or query the lake without projecting it.</summary>
    public static IServiceCollection AddLakeStore(this IServiceCollection services)
    {
        services.AddRegistryDocuments();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConfigureMarten, LakeTables>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<LakeStore>();
        return services;
    }
}
