using System.Net;
using System.Net.Http.Json;
using System.Numerics;
using System.Text.Json;
using Microsoft.Playwright;
using Nethereum.Hex.HexTypes;
using Nethereum.RPC.Eth.DTOs;
using Nethereum.Web3;
using Nethereum.Web3.Accounts;
using Pipeline.Cli.Hosting;
using Pipeline.Core.Crypto;
using Pipeline.Rewards.Chain;

namespace Pipeline.Tests.Integration.Web;

/// <summary>
/// A contributor's earnings, "explain my reward" and claim in the browser, against the rewards API and the local
/// chain: the wallet injected into the page signs with the owner's key and sends the claim to anvil; the owner's token
/// balance rises by the claimable amount.
/// </summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class ContributorRewardsTests(StackFixture fixture)
{
    [Fact]
    public async Task Contributor_ExplainsAndClaimsAReward_TheTokenBalanceOnChainRises()
    {
        // One-minute epochs, as the rewards stage's own tests run them, so an epoch closes while the test waits.
        await using var host = await TestHost.StartAsync(fixture, Roles.All, new Dictionary<string, string?>
        {
            ["Lake:EpochLength"] = "00:01:00",
            ["Rewards:Grace"] = "00:00:02",
            ["Rewards:PollInterval"] = "00:00:00.250",
        }, schema: "it_web_rewards");
        using var chainResponse = await host.Api.GetAsync("/v1/chain");
        Assert.True(chainResponse.StatusCode == HttpStatusCode.OK, $"GET /v1/chain answered {(int)chainResponse.StatusCode}: the rewards API is not served by this host.");
        var chain = await chainResponse.Content.ReadFromJsonAsync<JsonElement>();
        var rpcUrl = chain.GetProperty("rpcUrl").GetString()!;
        var token = chain.GetProperty("token").GetString()!;

        // The test's wallet owns a device that sends readings until the rewards stage has published an epoch paying it.
        var owner = EthKey.Generate();
        var address = owner.Address.ToLowerHex();
        var device = new TestDevice("web-rewards");
        await Registration.RegisterAsync(host, device.Key, owner: owner, metadata: Registration.Car);
        for (var i = 0; i < 30; i++)
        {
            using var body = new ByteArrayContent(device.Next([new("Vehicle.Speed", 40 + i)]).Envelope);
            body.Headers.ContentType = new("application/json");
            (await host.Ingest.PostAsync("/v1/readings", body)).EnsureSuccessStatusCode();
        }
        var proof = await WaitForProofAsync(host.Api, address, TimeSpan.FromMinutes(5));

        var web3 = new Web3(new Account(owner.ToHex(), chain.GetProperty("chainId").GetInt64()), rpcUrl);
        await new AnvilSetBalance(web3.Client).SendRequestAsync(address, new HexBigInteger(BigInteger.Pow(10, 20)));
        var erc20 = web3.Eth.ERC20.GetContractService(token);
        var before = await erc20.BalanceOfQueryAsync(address);

        await using var browser = await Browser.LaunchAsync();
        var page = await browser.NewPageAsync(host.Api.BaseAddress!.ToString());
        await InjectedWallet.InstallAsync(page, owner, async (method, parameters) => method switch
        {
            "eth_sendTransaction" => await SendSignedAsync(web3, new TransactionInput
            {
                Data = parameters[0].GetProperty("data").GetString(),
                To = parameters[0].GetProperty("to").GetString(),
                From = parameters[0].GetProperty("from").GetString(),
            }),
            "eth_getTransactionReceipt" => await web3.Eth.Transactions.GetTransactionReceipt.SendRequestAsync(parameters[0].GetString()) is { } receipt
                ? new { status = receipt.Status.HexValue } : null,
            _ => throw new InvalidOperationException($"The test wallet does not answer {method}."),
        });

        await page.GotoAsync("/contributor");
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in with browser wallet" }).ClickAsync();
        await Assertions.Expect(page.Locator("#wallet-address")).ToHaveTextAsync(address);
        var claimable = await page.Locator("#claimable").TextContentAsync();
        Assert.NotEqual("0", claimable);
        await Browser.AssertAccessibleAsync(page);
        await Browser.ScreenshotAsync(page, "contributor-earnings");

        await page.GetByRole(AriaRole.Link, new() { Name = "Explain my reward" }).First.ClickAsync();
        await Assertions.Expect(page.Locator("#explained-amount")).Not.ToBeEmptyAsync();
        await Browser.AssertAccessibleAsync(page);
        await Browser.ScreenshotAsync(page, "explain");

        await page.GotoAsync("/contributor");
        await page.Locator("#claim").ClickAsync();
        try
        {
            await Assertions.Expect(page.Locator("#claimable")).ToHaveTextAsync("0", new() { Timeout = 60_000 });
        }
        catch (PlaywrightException e)
        {
            var state = await page.Locator("#claim-state").TextContentAsync(new() { Timeout = 1_000 }).ContinueWith(t => t.IsCompletedSuccessfully ? t.Result : "(no claim state on the page)");
            throw new Xunit.Sdk.XunitException($"The claim did not bring the claimable amount to 0; the page says: {state}. {e.Message}");
        }
        var after = await erc20.BalanceOfQueryAsync(address);
        Assert.Equal(BigInteger.Parse(proof.GetProperty("cumulativeAmount").GetString()!), after - before);
    }

    /// <summary>
    /// The wallet's eth_sendTransaction: estimated, signed with the owner's key and sent raw, so that a refusal by the
    /// node comes back as an error (Nethereum's SendTransactionAsync answered a hash for a transaction anvil never held).
    /// </summary>
    private static async Task<string> SendSignedAsync(Web3 web3, TransactionInput input)
    {
        input.Gas = await web3.Eth.TransactionManager.EstimateGasAsync(input);
        var signed = await web3.TransactionManager.SignTransactionAsync(input);
        return await web3.Eth.Transactions.SendRawTransaction.SendRequestAsync(signed);
    }

    private static async Task<JsonElement> WaitForProofAsync(HttpClient api, string address, TimeSpan limit)
    {
        var deadline = DateTime.UtcNow + limit;
        while (true)
        {
            using var response = await api.GetAsync($"/v1/rewards/contributors/{address}/proof");
            if (response.IsSuccessStatusCode) return await response.Content.ReadFromJsonAsync<JsonElement>();
            var problem = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.NotFound && problem.Contains("no_rewards", StringComparison.Ordinal),
                $"The proof endpoint answered {(int)response.StatusCode}: {problem}");
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"No published epoch paid {address} within {limit}.");
            await Task.Delay(TimeSpan.FromSeconds(1));   // the next poll of an explicit condition: a published root for this owner
        }
    }
}
