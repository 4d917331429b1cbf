using JasperFx.Events.Projections;
using Marten;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Pipeline.Infra.Hosting;
using Pipeline.Projections;
using Pipeline.Rewards.Api;
using Pipeline.Rewards.Payments;
using Pipeline.Rewards.Stage;

namespace Pipeline.Rewards;

public static class RewardsRegistration
{
    /// <summary>
    /// What reads the rewards (the API): the epochs' documents in the event store, the settings, the chain connection,
    /// the queries. Adding it twice adds it once.
    /// </summary>
    public static IServiceCollection AddRewardsReadModel(this IServiceCollection services, IConfiguration configuration)
    {
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConfigureMarten, RewardsDocuments>());
        services.AddOptions<RewardsOptions>().Bind(configuration.GetSection(RewardsOptions.Section)).ValidateOnStart();
        services.AddOptions<ChainOptions>().Bind(configuration.GetSection(ChainOptions.Section)).ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<RewardsOptions>, RewardsOptionsValidation>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<ChainOptions>, RewardsOptionsValidation>());
        services.AddLakeOptions(configuration);
        services.AddLakeStore();
        // The API reads the chain; the rewards stage (AddRewards, registered first when both run) deploys.
        services.TryAddSingleton(provider => ActivatorUtilities.CreateInstance<RewardsChain>(provider, false));
        // Serving a reward file can mean computing it again from its epoch's record (RecordedRewardFiles).
        services.TryAddSingleton<RewardsMetrics>();
        services.TryAddSingleton<EpochInputsReader>();
        services.TryAddSingleton<RecordedRewardFiles>();
        services.TryAddSingleton<RewardsQueries>();
        if (!services.Any(s => s.ServiceType == typeof(RewardsExplained))) services.AddSingleton<RewardsExplained>().AddProblemExplanations(RewardsReason.Explanations);
        return services;
    }

    /// <summary>
    /// The rewards stage: one leader closes final epochs from the lake, writes their reward files and publishes their
    /// roots; one follower credits buyers' on-chain payments. The host adds the marketplace's buyer documents too: a
    /// buyer's balance is their inline projection of the PaymentReceived events the follower appends.
    /// </summary>
    public static IServiceCollection AddRewards(this IServiceCollection services, IConfiguration configuration)
    {
        services.TryAddSingleton(provider => ActivatorUtilities.CreateInstance<RewardsChain>(provider, true));
        services.AddRewardsReadModel(configuration);
        services.TryAddSingleton<EpochCloser>();
        services.TryAddSingleton<RootPublisher>();
        services.AddHostedService<RewardsStage>();
        services.TryAddSingleton<IPaymentsContractSource, DeployedPaymentsContract>();
        services.AddPaymentFollower(configuration);
        return services;
    }

    /// <summary>Marks that the rewards' problem explanations are registered.</summary>
    private sealed class RewardsExplained;

    private sealed class RewardsDocuments : IConfigureMarten
    {
        public void Configure(IServiceProvider services, StoreOptions options)
        {
            options.Projections.Add<RewardEpochProjection>(ProjectionLifecycle.Inline);
            // A contributor's epochs are found by JSON containment (RewardsQueries.ContributorEpochsSql).
            options.Schema.For<RewardEpoch>().GinIndexJsonData();
        }
    }
}
