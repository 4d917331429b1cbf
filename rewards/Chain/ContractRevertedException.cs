using Nethereum.ABI.FunctionEncoding;
using Nethereum.Contracts;

namespace Pipeline.Rewards.Chain;

/// <summary>
/// A call or transaction the contract refused, with the contract's named error (<c>NothingToClaim</c>,
/// <c>InvalidProof</c>, <c>EpochAlreadyPublished</c>, OpenZeppelin's <c>ERC20InsufficientAllowance</c>, …) and its
/// arguments, decoded through the ABIs solc produced.
/// </summary>
public sealed class ContractRevertedException(string error, IReadOnlyDictionary<string, object?> arguments, string? transactionHash, Exception inner)
    : Exception(Describe(error, arguments, transactionHash), inner)
{
    /// <summary>The Solidity error's name; <c>Error</c> for a plain <c>revert("…")</c>, <c>Unknown</c> for data no ABI here declares.</summary>
    public string Error { get; } = error;

    public IReadOnlyDictionary<string, object?> Arguments { get; } = arguments;

    /// <summary>The mined transaction that reverted, or null when the node refused it while estimating gas.</summary>
    public string? TransactionHash { get; } = transactionHash;

    /// <summary>Turns Nethereum's revert exceptions into a named error; null for any other exception.</summary>
    internal static ContractRevertedException? From(Exception exception, string? transactionHash = null)
    {
        switch (exception)
        {
            case SmartContractCustomErrorRevertException custom:
                foreach (var contract in CompiledContracts.All)
                {
                    var errorAbi = contract.ParsedAbi.Errors.FirstOrDefault(custom.IsCustomErrorFor);
                    if (errorAbi is null) continue;
                    var arguments = custom.DecodeErrorToDefault(errorAbi).ToDictionary(p => p.Parameter.Name, p => (object?)p.Result);
                    return new ContractRevertedException(errorAbi.Name, arguments, transactionHash, exception);
                }
                return new ContractRevertedException("Unknown", new Dictionary<string, object?> { ["data"] = custom.ExceptionEncodedData }, transactionHash, exception);
            case SmartContractRevertException revert:
                return new ContractRevertedException("Error", new Dictionary<string, object?> { ["reason"] = revert.RevertMessage }, transactionHash, exception);
            default:
                return null;
        }
    }

    private static string Describe(string error, IReadOnlyDictionary<string, object?> arguments, string? transactionHash) =>
        $"The contract reverted with {error}({string.Join(", ", arguments.Select(a => $"{a.Key}: {a.Value}"))})"
        + (transactionHash is null ? "." : $" in transaction {transactionHash}.");
}
