using System.Net;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Pipeline.Cli.Hosting;
using Pipeline.Rewards.Stage;

namespace Pipeline.Tests.Integration.Rewards;

/// <summary>One deployer of the contracts (the rewards stage), and an API that reads the chain without the operator's key.</summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class ChainReaderTests(StackFixture fixture)
{
    private const string Schema = "it_chain_reader";

    [Fact]
    public async Task Api_WithoutTheOperatorKeyOnAChainNotDeployedYet_DeploysNothing_ThenReadsTheRewardsStagesContracts_Issue16()
    {
        // Not the local chain's defaults: no operator key at all, as an API replica is deployed.
        await using var api = await TestHost.StartAsync(fixture, Roles.Api, new Dictionary<string, string?> { ["Chain:Local"] = "false", ["Chain:OperatorKey"] = "" }, Schema);
        var deploymentFile = api.App.Services.GetRequiredService<RewardsChain>().DeploymentFile;
        if (File.Exists(deploymentFile)) File.Delete(deploymentFile); // a former run's, on a former anvil

        var before = await api.Api.GetAsync("/v1/chain");
        var problem = await before.Content.ReadAsStringAsync();
        Assert.True(before.StatusCode == HttpStatusCode.ServiceUnavailable, problem);
        Assert.Equal("chain_unavailable", JsonDocument.Parse(problem).RootElement.GetProperty("reason").GetString());
        Assert.Contains("the rewards stage deploys them", problem, StringComparison.Ordinal);
        Assert.False(File.Exists(deploymentFile));

        await using var stage = await TestHost.StartAsync(fixture, Roles.Rewards, new Dictionary<string, string?> { ["EventStore:Schema"] = Schema });
        var deployed = await stage.App.Services.GetRequiredService<RewardsChain>().GetAsync(CancellationToken.None);

        var chain = JsonDocument.Parse(await api.Api.GetStringAsync("/v1/chain")).RootElement;
        Assert.Equal(
            (deployed.Token.ToLowerInvariant(), deployed.Distributor.ToLowerInvariant(), deployed.Payments.ToLowerInvariant()),
            (chain.GetProperty("token").GetString(), chain.GetProperty("distributor").GetString(), chain.GetProperty("payments").GetString()));
    }
}
