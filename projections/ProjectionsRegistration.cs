using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Pipeline.Projections.Lake;

namespace Pipeline.Projections;

public static class ProjectionsRegistration
{
    /// <summary>The lake projector and its metrics.</summary>
    public static IServiceCollection AddProjections(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<LakeOptions>()
            .Bind(configuration.GetSection(LakeOptions.Section))
            .ValidateOnStart();
        services.AddSingleton<IValidateOptions<LakeOptions>, LakeOptionsValidation>();
        services.AddSingleton<LakeMetrics>();
        services.AddHostedService<LakeProjector>();
        return services;
    }
}
