using JasperFx.Events.Projections;
using Marten;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Pipeline.Infra.Hosting;
using Pipeline.Marketplace.Accounts;
using Pipeline.Marketplace.Catalog;
using Pipeline.Marketplace.ExportJobs;
using Pipeline.Marketplace.Grants;
using Pipeline.Marketplace.Query;
using Pipeline.Marketplace.Sandbox;
using Pipeline.Projections;

namespace Pipeline.Marketplace;

public static class MarketplaceRegistration
{
    /// <summary>
    /// The buyer accounts in the event store, and at start the move of accounts of an older shape; adding them twice
    /// adds them once.
    /// </summary>
    public static IServiceCollection AddMarketplaceDocuments(this IServiceCollection services)
    {
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IConfigureMarten, MarketDocuments>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, AccountDocumentMigration>());
        return services;
    }

    /// <summary>The marketplace API's services: accounts and their keys, the catalog over the lake, grants, the query sandbox, its limits.</summary>
    public static IServiceCollection AddMarketplace(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddMarketplaceDocuments();
        services.AddOptions<MarketplaceOptions>()
            .Bind(configuration.GetSection(MarketplaceOptions.Section))
            .Validate(o => !o.Errors().Any(), "Marketplace settings are invalid (prices ≥ 0, MaxGrantRows, RequestsPerSecond and RequestBurst positive, MaxBodyBytes ≥ 1024, query limits, CatalogRefresh ≥ 0, ExportHeartbeatTimeout ≥ 1 s).")
            .ValidateOnStart();
        services.AddLakeOptions(configuration);
        services.AddLakeStore();
        services.TryAddSingleton(provider => new OperatorKey(provider.GetRequiredService<IOptions<MarketplaceOptions>>().Value
            .ResolveOperatorKeyFile(provider.GetRequiredService<IOptions<DataOptions>>().Value.FullPath)));
        services.AddSingleton<MarketAccounts>();
        services.AddSingleton<BuyerKeyCache>();
        services.AddSingleton<AccountCache>();
        services.AddSingleton<MarketLake>();
        services.AddSingleton<DatasetCatalog>();
        services.AddSingleton<DatasetPreviews>();
        services.AddSingleton<DatasetSeries>();
        services.AddSingleton<AccountHistory>();
        services.AddSingleton<GrantPurchases>();
        services.AddSingleton<GrantedQueries>();
        services.AddSingleton<DeviceMakes>();
        services.AddHostedService(provider => provider.GetRequiredService<DeviceMakes>());
        services.AddSingleton<MarketMetrics>();
        services.AddSingleton<SandboxPool>();
        services.AddSingleton<ValidatedStatements>();
        services.AddSingleton<Feed.LiveFeed>();
        services.AddHostedService(provider => provider.GetRequiredService<Feed.LiveFeed>());
        services.AddSingleton<Feed.GrantFeeds>();
        services.AddSingleton<Contributors.ContributorLogin>();
        services.AddSingleton<Contributors.ContributorData>();
        services.TryAddSingleton(provider => new MarketSigner(Path.Combine(MarketFolder(provider), "signer.key")));
        services.AddSingleton<ExportJobStore>();
        services.TryAddSingleton(provider => ActivatorUtilities.CreateInstance<ExportQueue>(provider, Path.Combine(MarketFolder(provider), "exports")));
        services.AddHostedService(provider => provider.GetRequiredService<ExportQueue>());

        services.AddAuthentication(MarketKeyHandler.SchemeName).AddScheme<AuthenticationSchemeOptions, MarketKeyHandler>(MarketKeyHandler.SchemeName, null);
        services.AddAuthorizationBuilder()
            .AddPolicy(MarketKeyHandler.OperatorPolicy, p => p.AddAuthenticationSchemes(MarketKeyHandler.SchemeName).RequireRole("operator"))
            .AddPolicy(MarketKeyHandler.BuyerPolicy, p => p.AddAuthenticationSchemes(MarketKeyHandler.SchemeName).RequireRole("buyer"))
            .AddPolicy(MarketKeyHandler.ContributorPolicy, p => p.AddAuthenticationSchemes(MarketKeyHandler.SchemeName).RequireRole("contributor"));
        services.AddRateLimiter(o => o.AddPolicy<string, MarketRateLimit>(MarketRateLimit.Policy));
        services.AddProblemExplanations(MarketProblems.Explanations);
        services.AddHostedService<Contributors.SalesByDeviceIndex.AtStart>();
        return services;
    }

    /// <summary>The marketplace's files: its signing key and the exports, beside the lake in the data folder.</summary>
    private static string MarketFolder(IServiceProvider provider) => Path.Combine(provider.GetRequiredService<IOptions<DataOptions>>().Value.FullPath, "marketplace");

    private sealed class MarketDocuments : IConfigureMarten
    {
        public void Configure(IServiceProvider services, StoreOptions options)
        {
            // A change to an account appends to the account it decided on, held by its identity session; without this the
            // inline projection reads that account again, on a connection of its own, before the change's batch (a round
            // trip on every charge). With it the projection applies the events to the instance held. Store-wide: other
            // inline projections then read their document in their session's own transaction, as one would expect.
            options.Events.UseIdentityMapForAggregates = true;
            options.Projections.Add<BuyerAccountProjection>(ProjectionLifecycle.Inline);
            options.Projections.Add<BuyerKeyProjection>(ProjectionLifecycle.Inline);
            options.Projections.Add<CountedPaymentProjection>(ProjectionLifecycle.Inline);
            // An uncached key is found by its hash, an account's keys by its id. The account itself has no index but its
            // id: every charge rewrites it, and an index of anything in it would make each rewrite a new index entry.
            options.Schema.For<BuyerKey>().UniqueIndex(k => k.Hash).Index(k => k.BuyerId);
            options.Schema.For<CountedPayment>().Index(p => p.BuyerId);
            options.Storage.ExtendedSchemaObjects.AddRange(Contributors.ContributorLogin.Tables(options.DatabaseSchemaName));
            options.Storage.ExtendedSchemaObjects.Add(ExportJobStore.Table(options.DatabaseSchemaName));
        }
    }
}
