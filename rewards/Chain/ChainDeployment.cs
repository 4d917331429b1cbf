using System.Numerics;
using System.Text.Json;
using Nethereum.Hex.HexConvertors.Extensions;
using Nethereum.RPC.Eth.DTOs;
using Nethereum.Util;

namespace Pipeline.Rewards.Chain;

/// <summary>A deployed contract: its address and the keccak256 of the runtime code found there after deployment.</summary>
public sealed record DeployedContract(string Address, string CodeHash);

/// <summary>
/// The three contracts on one chain, as remembered in a JSON file: reused while the chain still holds them (same chain
/// id, same block at the deployment's height, same code at each address) and the contracts were built from the same sources.
/// </summary>
public sealed record ChainDeployment(
    string ChainId,
    long DeployedAtBlock,
    string DeployedAtBlockHash,
    string BuildHash,
    string Operator,
    string Treasury,
    DeployedContract Token,
    DeployedContract Distributor,
    DeployedContract Payments)
{
    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web) { WriteIndented = true };

    /// <summary>The deployment recorded at <paramref name="path"/> if it is the one on the client's chain, else null.</summary>
    public static async Task<ChainDeployment?> RecordedAsync(ChainClient client, string treasury, string path, CancellationToken cancellationToken = default)
    {
        if (!File.Exists(path)) return null;
        var recorded = JsonSerializer.Deserialize<ChainDeployment>(await File.ReadAllTextAsync(path, cancellationToken), Json);
        return recorded is not null && await recorded.IsOnChainAsync(client, treasury) ? recorded : null;
    }

    /// <summary>
    /// Returns the deployment recorded in <paramref name="path"/> if the chain still holds it; otherwise deploys the
    /// token (its whole <paramref name="supply"/> minted to <paramref name="treasury"/>), the distributor (owned by the
    /// client's account, the operator) and Payments, and records them there.
    /// </summary>
    public static async Task<ChainDeployment> EnsureAsync(ChainClient operatorClient, string treasury, BigInteger supply, string path, CancellationToken cancellationToken = default)
    {
        if (await RecordedAsync(operatorClient, treasury, path, cancellationToken) is { } recorded) return recorded;
        var deployed = await DeployAsync(operatorClient, treasury, supply, cancellationToken);
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        var temporary = path + ".tmp";
        await File.WriteAllTextAsync(temporary, JsonSerializer.Serialize(deployed, Json), cancellationToken);
        File.Move(temporary, path, overwrite: true);
        return deployed;
    }

    /// <summary>
    /// Whether this deployment is the one on the chain the client talks to (not reset, same sources, same roles); a
    /// reading client (no key) does not check the operator, whose key only the deployer holds.
    /// </summary>
    public async Task<bool> IsOnChainAsync(ChainClient client, string treasury)
    {
        if (ChainId != client.ChainId.ToString() || BuildHash != CompiledContracts.BuildHash) return false;
        if ((client.CanSend && !Operator.IsTheSameAddress(client.Address)) || !Treasury.IsTheSameAddress(treasury)) return false;
        var block = await client.Web3.Eth.Blocks.GetBlockWithTransactionsHashesByNumber.SendRequestAsync(new BlockParameter((ulong)DeployedAtBlock));
        if (block is null || block.BlockHash != DeployedAtBlockHash) return false;
        foreach (var contract in new[] { Token, Distributor, Payments })
        {
            if (await CodeHashAsync(client, contract.Address) != contract.CodeHash) return false;
        }
        return true;
    }

    private static async Task<ChainDeployment> DeployAsync(ChainClient client, string treasury, BigInteger supply, CancellationToken cancellationToken)
    {
        var token = await client.DeployAsync(new RewardTokenDeployment { Treasury = treasury, Supply = supply }, cancellationToken);
        var distributor = await client.DeployAsync(
            new RewardsDistributorDeployment { Token = token.ContractAddress, Treasury = treasury, Operator = client.Address }, cancellationToken);
        var payments = await client.DeployAsync(new PaymentsDeployment { Token = token.ContractAddress, Treasury = treasury }, cancellationToken);
        return new ChainDeployment(
            client.ChainId.ToString(),
            (long)payments.BlockNumber.Value,
            payments.BlockHash,
            CompiledContracts.BuildHash,
            client.Address,
            treasury,
            new DeployedContract(token.ContractAddress, await CodeHashAsync(client, token.ContractAddress)),
            new DeployedContract(distributor.ContractAddress, await CodeHashAsync(client, distributor.ContractAddress)),
            new DeployedContract(payments.ContractAddress, await CodeHashAsync(client, payments.ContractAddress)));
    }

    private static async Task<string> CodeHashAsync(ChainClient client, string address)
    {
        var code = await client.Web3.Eth.GetCode.SendRequestAsync(address);
        return Sha3Keccack.Current.CalculateHashFromHex(code.RemoveHexPrefix()).EnsureHexPrefix();
    }
}
