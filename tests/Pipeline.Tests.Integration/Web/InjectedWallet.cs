using System.Text.Json;
using Microsoft.Playwright;
using Pipeline.Core.Crypto;

namespace Pipeline.Tests.Integration.Web;

/// <summary>
/// An EIP-1193 wallet injected into the page as window.ethereum whose request() the test answers with a known key:
/// accounts, personal_sign (EIP-191, by core's signer) and, when given, transactions and receipts through a chain.
/// </summary>
public static class InjectedWallet
{
    public static async Task InstallAsync(IPage page, EthKey key, Func<string, JsonElement, Task<object?>>? chain = null)
    {
        var account = key.Address.ToLowerHex();
        await page.ExposeFunctionAsync<string, string, Task<string>>("depinWalletRequest", async (method, parameters) =>
        {
            using var json = JsonDocument.Parse(parameters);
            object? result = method switch
            {
                "eth_requestAccounts" or "eth_accounts" => new[] { account },
                "personal_sign" => Hex.Encode0x(key.SignPersonal(Hex.Decode(json.RootElement[0].GetString()!))),
                _ when chain is not null => await chain(method, json.RootElement.Clone()),
                _ => throw new InvalidOperationException($"The test wallet does not answer {method}."),
            };
            return JsonSerializer.Serialize(result);
        });
        await page.AddInitScriptAsync("""
            window.ethereum = {
              isDepinTestWallet: true,
              request: async ({ method, params }) => JSON.parse(await window.depinWalletRequest(method, JSON.stringify(params || []))),
            };
            """);
    }

}
