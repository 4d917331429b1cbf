using System.Numerics;
using Nethereum.Contracts;
using Nethereum.Contracts.CQS;
using Nethereum.Hex.HexTypes;
using Nethereum.RPC.Eth.DTOs;
using Nethereum.Web3;
using Nethereum.Web3.Accounts;

namespace Pipeline.Rewards.Chain;

/// <summary>
/// One account on one EVM chain through Nethereum: deploys contracts, sends EIP-1559 transactions signed with the
/// account's key and waits for their receipts, and queries. Sends may run concurrently: each takes the next nonce
/// under a lock that it holds until the node has accepted the signed transaction, so nonces never repeat or skip.
/// A refused transaction surfaces as <see cref="ContractRevertedException"/> with the contract's named error.
/// </summary>
public sealed class ChainClient
{
    // Gas estimates are exact for the state they ran on; a concurrent transaction can change that state before this one
    // is mined (a first claim writes a fresh storage slot), so each limit carries a quarter on top.
    private const int GasHeadroomPercent = 25;

    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private BigInteger? _nextNonce;

    private readonly TimeSpan _receiptTimeout;

    /// <summary>The address a reading client names (it has no account).</summary>
    public const string NoAccount = "0x0000000000000000000000000000000000000000";

    private ChainClient(Web3 web3, string address, BigInteger chainId, TimeSpan receiptTimeout)
    {
        Web3 = web3;
        Address = address;
        ChainId = chainId;
        _receiptTimeout = receiptTimeout;
    }

    public Web3 Web3 { get; }

    /// <summary>The account's address (EIP-55).</summary>
    public string Address { get; }

    public BigInteger ChainId { get; }

    /// <summary>Whether this client holds a key and can send transactions (a reading client only calls and reads logs).</summary>
    public bool CanSend => Address != NoAccount;

    /// <summary>Connects to <paramref name="rpcUrl"/> to read only, without a key: calls, logs, blocks; sending fails.</summary>
    public static async Task<ChainClient> ConnectReadOnlyAsync(string rpcUrl, CancellationToken cancellationToken = default)
    {
        var web3 = new Web3(rpcUrl);
        var chainId = (await web3.Eth.ChainId.SendRequestAsync().WaitAsync(cancellationToken)).Value;
        return new ChainClient(web3, NoAccount, chainId, TimeSpan.FromMinutes(2));
    }

    /// <summary>
    /// Connects to <paramref name="rpcUrl"/>, reads its chain id, and signs with <paramref name="privateKey"/> (hex). A sent
    /// transaction not mined within <paramref name="receiptTimeout"/> (two minutes unless given) fails the wait with a
    /// <see cref="TimeoutException"/>; it may still be mined later.
    /// </summary>
    public static async Task<ChainClient> ConnectAsync(string rpcUrl, string privateKey, TimeSpan? receiptTimeout = null, CancellationToken cancellationToken = default)
    {
        var chainId = (await new Web3(rpcUrl).Eth.ChainId.SendRequestAsync().WaitAsync(cancellationToken)).Value;
        var account = new Account(privateKey, chainId);
        var web3 = new Web3(account, rpcUrl);
        // Nethereum sends type-2 (EIP-1559) transactions unless told otherwise; said here so that no default can change it.
        web3.TransactionManager.UseLegacyAsDefault = false;
        return new ChainClient(web3, account.Address, chainId, receiptTimeout ?? TimeSpan.FromMinutes(2));
    }

    /// <summary>Deploys a contract and returns its receipt (<c>ContractAddress</c> names it).</summary>
    public async Task<TransactionReceipt> DeployAsync<TDeployment>(TDeployment deployment, CancellationToken cancellationToken = default)
        where TDeployment : ContractDeploymentMessage, new()
    {
        var handler = Web3.Eth.GetContractDeploymentHandler<TDeployment>();
        deployment.FromAddress = Address;
        deployment.Gas ??= WithHeadroom(await Revertible(() => handler.EstimateGasAsync(deployment)));
        var hash = await SubmitAsync(deployment, () => handler.SignTransactionAsync(deployment), cancellationToken);
        return await WaitForReceiptAsync(hash, cancellationToken);
    }

    /// <summary>Sends a function call as a transaction and waits until it is mined; throws if it reverted.</summary>
    public async Task<TransactionReceipt> SendAsync<TMessage>(string contract, TMessage message, CancellationToken cancellationToken = default)
        where TMessage : FunctionMessage, new()
    {
        var handler = Web3.Eth.GetContractTransactionHandler<TMessage>();
        message.FromAddress = Address;
        message.Gas ??= WithHeadroom(await Revertible(() => handler.EstimateGasAsync(contract, message)));
        var hash = await SubmitAsync(message, () => handler.SignTransactionAsync(contract, message), cancellationToken);
        return await WaitForReceiptAsync(hash, cancellationToken);
    }

    /// <summary>Calls a view function (at <paramref name="block"/>, or the latest block).</summary>
    public Task<TResult> QueryAsync<TMessage, TResult>(string contract, TMessage message, BlockParameter? block = null)
        where TMessage : FunctionMessage, new() =>
        Revertible(() => Web3.Eth.GetContractQueryHandler<TMessage>().QueryAsync<TResult>(contract, message, block));

    /// <summary>Polls for the receipt of a sent transaction; a reverted one throws with the contract's named error.</summary>
    public async Task<TransactionReceipt> WaitForReceiptAsync(string transactionHash, CancellationToken cancellationToken = default)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(_receiptTimeout);
        TransactionReceipt receipt;
        try
        {
            receipt = await Web3.TransactionReceiptPolling.PollForReceiptAsync(transactionHash, timeout.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // A transaction that is not mined may have been dropped (a reorganisation, a node restart): the next send
            // asks the node for the nonce again instead of counting on from one it may never fill.
            await ForgetNonceAsync();
            throw new TimeoutException($"Transaction {transactionHash} was not mined within {_receiptTimeout.TotalSeconds:0} s; it may still be: look it up by its hash before sending it again.");
        }
        if (receipt.Succeeded()) return receipt;
        // The receipt says only that it failed: replaying the call in its block yields the revert data.
        try
        {
            var reason = await Web3.Eth.GetContractTransactionErrorReason.SendRequestAsync(transactionHash);
            throw new ContractRevertedException("Error", new Dictionary<string, object?> { ["reason"] = reason }, transactionHash, new InvalidOperationException(reason));
        }
        catch (Exception e) when (ContractRevertedException.From(e, transactionHash) is { } reverted)
        {
            throw reverted;
        }
    }

    private async Task<string> SubmitAsync(ContractMessageBase message, Func<Task<string>> sign, CancellationToken cancellationToken)
    {
        if (!CanSend) throw new InvalidOperationException("This chain client reads only (it was connected without a key) and cannot send transactions.");
        await _sendLock.WaitAsync(cancellationToken);
        try
        {
            _nextNonce ??= (await Web3.Eth.Transactions.GetTransactionCount.SendRequestAsync(Address, BlockParameter.CreatePending())).Value;
            message.Nonce = _nextNonce;
            var signed = await sign();
            string hash;
            try
            {
                hash = await Web3.Eth.Transactions.SendRawTransaction.SendRequestAsync(signed);
            }
            catch
            {
                // The node may or may not have taken it (a timeout): ask it again for the next nonce rather than guess.
                _nextNonce = null;
                throw;
            }
            _nextNonce++;
            return hash;
        }
        finally
        {
            _sendLock.Release();
        }
    }

    private async Task ForgetNonceAsync()
    {
        await _sendLock.WaitAsync();
        _nextNonce = null;
        _sendLock.Release();
    }

    private static HexBigInteger WithHeadroom(HexBigInteger estimate) => new(estimate.Value * (100 + GasHeadroomPercent) / 100);

    private static async Task<T> Revertible<T>(Func<Task<T>> call)
    {
        try
        {
            return await call();
        }
        catch (Exception e) when (ContractRevertedException.From(e) is { } reverted)
        {
            throw reverted;
        }
    }
}
