using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Pipeline.Streams.Processing;
using Pipeline.Streams.Registry;

namespace Pipeline.Streams;

public static class StreamsRegistration
{
    /// <summary>The processors: the consumer-group member, the dead-letter relay, the registry cache they read.</summary>
    public static IServiceCollection AddStreams(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<ProcessorOptions>()
            .Bind(configuration.GetSection(ProcessorOptions.Section))
            .Validate(o => o.BatchSize > 0 && o.BatchWait > TimeSpan.Zero && o.Parallelism > 0, "Streams:BatchSize, BatchWait and Parallelism must be positive.")
            .ValidateOnStart();
        services.AddSingleton<ProcessingStore>();
        services.AddSingleton<StreamsMetrics>();
        services.AddSingleton<DeviceDirectory>();
        services.AddHostedService(provider => provider.GetRequiredService<DeviceDirectory>());
        services.AddSingleton<DeadLetterRelay>();
        services.AddHostedService(provider => provider.GetRequiredService<DeadLetterRelay>());
        services.AddSingleton<ReadingProcessor>();
        services.AddHostedService(provider => provider.GetRequiredService<ReadingProcessor>());
        return services;
    }

    /// <summary>The registry API's service and the network its messages are signed for.</summary>
    public static IServiceCollection AddDeviceRegistry(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<NetworkOptions>()
            .Bind(configuration.GetSection(NetworkOptions.Section))
            .Validate(o => !string.IsNullOrWhiteSpace(o.Name) && o.ChainId > 0, "Network:Name must not be empty and Network:ChainId must be positive.")
            .ValidateOnStart();
        services.AddSingleton<DeviceRegistry>();
        return services;
    }
}
