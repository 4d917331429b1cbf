using System.Globalization;
using Marten;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;

namespace Pipeline.Rewards.Payments;

public static class PaymentsRegistration
{
    /// <summary>
    /// The payment follower (a hosted service) with its options and documents. The host must open the event store
    /// (AddEventStore) and carry the marketplace's buyer documents (AddMarketplaceDocuments): the buyer's balance is
    /// the marketplace's inline projection of the PaymentReceived events this appends. The contract is the configured
    /// one unless the host registered an <see cref="IPaymentsContractSource"/> first.
    /// </summary>
    public static IServiceCollection AddPaymentFollower(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<PaymentsOptions>()
            .Configure(o => FromChainSection(o, configuration.GetSection("Chain")))
            .Bind(configuration.GetSection(PaymentsOptions.Section))
            .ValidateOnStart();
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<PaymentsOptions>, EachError>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConfigureMarten, PaymentDocuments>());
        services.AddMetrics();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<PaymentsMetrics>();
        services.TryAddSingleton<IPaymentsContractSource, ConfiguredPaymentsContract>();
        services.AddHostedService<PaymentFollower>();
        return services;
    }

    /// <summary>What the dev chain (or the operator) wrote under "Chain" is the default; "Payments" overrides it.</summary>
    private static void FromChainSection(PaymentsOptions options, IConfigurationSection chain)
    {
        options.RpcUrl = chain["RpcUrl"] ?? options.RpcUrl;
        options.Contract = chain["Payments"] ?? options.Contract;
        if (int.TryParse(chain["Confirmations"], NumberStyles.None, CultureInfo.InvariantCulture, out var confirmations)) options.Confirmations = confirmations;
        if (long.TryParse(chain["DeployedAtBlock"], NumberStyles.None, CultureInfo.InvariantCulture, out var block)) options.StartBlock = block;
    }

    /// <summary>Every problem in the settings, each in words, rather than one line saying that something is wrong.</summary>
    private sealed class EachError : IValidateOptions<PaymentsOptions>
    {
        public ValidateOptionsResult Validate(string? name, PaymentsOptions options) =>
            options.Errors().ToList() is { Count: > 0 } errors ? ValidateOptionsResult.Fail(errors) : ValidateOptionsResult.Success;
    }

    private sealed class PaymentDocuments : IConfigureMarten
    {
        public void Configure(IServiceProvider services, StoreOptions options)
        {
            options.Schema.For<ChainPayment>().Index(p => p.Status).Index(p => p.BuyerId);
            options.Schema.For<PaymentsCursor>();
        }
    }
}
