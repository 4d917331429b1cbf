using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Pipeline.Projections.Lake;

namespace Pipeline.Projections;

public static class ProjectionsRegistration
{
    /// <summary>The lake projector and its metrics.</summary>
    public static IServiceCollection AddProjections(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<LakeOptions>()
            .Bind(configuration.GetSection(LakeOptions.Section))
            .Validate(o => o.LocationDecimals is >= 0 and <= 6, "Lake:LocationDecimals must be 0–6.")
            .Validate(o => o.EpochLength >= TimeSpan.FromMinutes(1) && o.MaxEventsPerRound > 0, "Lake:EpochLength must be at least a minute.")
            .ValidateOnStart();
        services.AddSingleton<LakeMetrics>();
        services.AddSingleton<LakeProjector>();
        services.AddHostedService(provider => provider.GetRequiredService<LakeProjector>());
        return services;
    }
}
