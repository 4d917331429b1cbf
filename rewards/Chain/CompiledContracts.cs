using System.Reflection;
using System.Security.Cryptography;
using System.Text.Json;
using Nethereum.ABI.ABIDeserialisation;
using Nethereum.ABI.Model;

namespace Pipeline.Rewards.Chain;

/// <summary>A contract as solc compiled it from infra/contracts: its ABI and creation bytecode.</summary>
public sealed record CompiledContract(string Name, string Abi, string Bytecode)
{
    public ContractABI ParsedAbi { get; } = ABIDeserialiserFactory.DeserialiseContractABI(Abi);
}

/// <summary>
/// The contracts ./depin's setup compiles into infra/contracts/build, embedded in this assembly at build time.
/// </summary>
public static class CompiledContracts
{
    public static CompiledContract RewardToken { get; } = Load("RewardToken");
    public static CompiledContract RewardsDistributor { get; } = Load("RewardsDistributor");
    public static CompiledContract Payments { get; } = Load("Payments");

    public static IReadOnlyList<CompiledContract> All { get; } = [RewardToken, RewardsDistributor, Payments];

    /// <summary>sha256 over every contract's creation bytecode: a deployment made from other sources is not reused.</summary>
    public static string BuildHash { get; } =
        Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(string.Join('\n', All.Select(c => c.Bytecode)))));

    private static CompiledContract Load(string name)
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream($"contracts/{name}.json")
            ?? throw new InvalidOperationException(
                $"The compiled contract {name} is not in this build: run ./depin (its setup compiles infra/contracts with solc into infra/contracts/build), then build again.");
        using var artifact = JsonDocument.Parse(stream);
        var root = artifact.RootElement;
        return new CompiledContract(name, root.GetProperty("abi").GetRawText(), root.GetProperty("bytecode").GetString()!);
    }
}
