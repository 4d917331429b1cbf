using Marten;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Pipeline.Registry;
using Pipeline.Streams.Processing;

namespace Pipeline.Streams;

public static class StreamsRegistration
{
    /// <summary>The processors: the consumer-group member, the dead-letter relay, and the device directory they read.</summary>
    public static IServiceCollection AddStreams(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<ProcessorOptions>()
            .Bind(configuration.GetSection(ProcessorOptions.Section))
            .Validate(o => o.BatchSize > 0 && o.BatchWait > TimeSpan.Zero && o.Parallelism > 0, "Streams:BatchSize, BatchWait and Parallelism must be positive.")
            .ValidateOnStart();
        services.AddDeviceDirectory();
        services.AddProcessingStore();
        services.AddSingleton<StreamsMetrics>();
        services.AddSingleton<DeadLetterRelay>();
        services.AddHostedService(provider => provider.GetRequiredService<DeadLetterRelay>());
        services.AddSingleton<ReadingProcessor>();
        services.AddHostedService(provider => provider.GetRequiredService<ReadingProcessor>());
        return services;
    }

    /// <summary>The processors' store and its tables in the event store's schema (adding them twice adds them once).</summary>
    public static IServiceCollection AddProcessingStore(this IServiceCollection services)
    {
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConfigureMarten, ProcessingTables>());
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<ProcessingStore>();
        return services;
    }
}
