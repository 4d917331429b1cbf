using Nethereum.JsonRpc.Client;
using Nethereum.RPC.Infrastructure;

namespace Pipeline.Rewards.Chain;

// Development-chain methods anvil (like hardhat) answers, as typed Nethereum requests: the package that carries
// them (Nethereum.RPC.Extensions) is not served here. Used by tests to mine blocks and to reorganise the chain.

/// <summary><c>evm_snapshot</c>: the id of a snapshot of the chain's current state.</summary>
public sealed class EvmSnapshot(IClient client) : GenericRpcRequestResponseHandlerNoParam<string>(client, "evm_snapshot");

/// <summary><c>evm_revert</c>: returns the chain to a snapshot, dropping every block mined since.</summary>
public sealed class EvmRevert(IClient client) : RpcRequestResponseHandler<bool>(client, "evm_revert")
{
    public Task<bool> SendRequestAsync(string snapshotId) => SendRequestAsync(null, snapshotId);
}

/// <summary><c>evm_mine</c>: mines one block now.</summary>
public sealed class EvmMine(IClient client) : GenericRpcRequestResponseHandlerNoParam<string>(client, "evm_mine");

/// <summary><c>anvil_setBalance</c>: gives an account this many wei of ether, for gas.</summary>
public sealed class AnvilSetBalance(IClient client) : RpcRequestResponseHandler<object>(client, "anvil_setBalance")
{
    public Task<object> SendRequestAsync(string address, Nethereum.Hex.HexTypes.HexBigInteger wei) => SendRequestAsync(null, address, wei);
}

/// <summary><c>evm_setAutomine</c>: with false, sent transactions wait in the pool until a block is mined by hand.</summary>
public sealed class EvmSetAutomine(IClient client) : RpcRequestResponseHandler<object>(client, "evm_setAutomine")
{
    public Task<object> SendRequestAsync(bool enabled) => SendRequestAsync(null, enabled);
}
