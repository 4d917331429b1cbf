using System.CommandLine;
using System.Globalization;
using System.Numerics;
using System.Text.Json;
using Nethereum.ABI.FunctionEncoding.Attributes;
using Nethereum.Contracts;
using Nethereum.Hex.HexConvertors.Extensions;
using Nethereum.Web3;
using Pipeline.Core.Crypto;
using Pipeline.Rewards.Chain;
using Pipeline.Rewards.Epochs;
using Spectre.Console;

namespace Pipeline.Cli.Commands;

/// <summary>
/// `depin rewards verify` and `depin rewards claim`: what anyone can do with a published epoch, from their own machine —
/// recompute it from its reward file and compare with the chain, and claim their cumulative amount with a proof.
/// </summary>
public static class RewardsCommands
{
    public const string ChainVariable = "PIPELINE_CHAIN";

    /// <summary>Exit code of a check that did not match, or a claim the contract (or the precheck) refused.</summary>
    public const int Refused = 1;

    public static Command Create() => new("rewards", "Verify an epoch's rewards against the chain, or claim yours.") { Verify(), Claim() };

    /// <summary>Tables hold 66-character hashes: written to a file or a pipe, they are not wrapped at a guessed width.</summary>
    private static void FitOutput()
    {
        if (Console.IsOutputRedirected) AnsiConsole.Profile.Width = 400;
    }

    /// <summary>Where the API and the chain are: options first, then PIPELINE_CHAIN, then what the API's GET /v1/chain says.</summary>
    private sealed class ChainOptions
    {
        public readonly Option<string> Api = new("--api") { Description = "The API (rewards and chain settings).", DefaultValueFactory = _ => "http://127.0.0.1:5080" };
        public readonly Option<string?> Chain = new("--chain") { Description = $"The chain's JSON-RPC URL; default: {ChainVariable}, else the rpcUrl GET /v1/chain names (the local dev chain)." };
        public readonly Option<string?> Distributor = new("--distributor") { Description = "The RewardsDistributor's address; default: the one GET /v1/chain names." };

        public void AddTo(Command command)
        {
            command.Options.Add(Api);
            command.Options.Add(Chain);
            command.Options.Add(Distributor);
        }

        public MarketplaceClient Client(ParseResult result) =>
            Uri.TryCreate(result.GetValue(Api), UriKind.Absolute, out var api) && api.Scheme is "http" or "https"
                ? new MarketplaceClient(api, key: null)
                : throw new ArgumentException($"--api takes an http(s) URL such as http://127.0.0.1:5080; '{result.GetValue(Api)}' is not one.");

        /// <summary>The RPC URL and the distributor, asking the API only for what the options and environment leave open.</summary>
        public async Task<(string RpcUrl, string Distributor)> ResolveAsync(ParseResult result, CancellationToken cancellation)
        {
            var rpc = result.GetValue(Chain) ?? Environment.GetEnvironmentVariable(ChainVariable);
            var distributor = result.GetValue(Distributor);
            if (rpc is null || distributor is null)
            {
                using var api = Client(result);
                var chain = await api.JsonAsync(HttpMethod.Get, "/v1/chain", null, cancellation);
                rpc ??= chain.TryGetProperty("rpcUrl", out var url) && url.ValueKind == JsonValueKind.String ? url.GetString()
                    : throw new ArgumentException($"The API does not name a public RPC endpoint: pass --chain or set {ChainVariable}.");
                distributor ??= chain.GetProperty("distributor").GetString();
            }
            if (!Uri.TryCreate(rpc, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
                throw new ArgumentException($"--chain takes the chain's http(s) JSON-RPC URL such as http://127.0.0.1:8545; '{rpc}' is not one.");
            if (distributor is null || !Nethereum.Util.AddressUtil.Current.IsValidEthereumAddressHexFormat(distributor))
                throw new ArgumentException($"--distributor takes the RewardsDistributor's 0x address; '{distributor}' is not one.");
            return (rpc!, distributor);
        }
    }

    private static Command Verify()
    {
        var chain = new ChainOptions();
        var epoch = new Option<long>("--epoch") { Description = "The epoch to verify.", Required = true };
        var from = new Option<FileInfo?>("--from") { Description = "The epoch's reward file (epoch-N.json from the lake's exports); default: the API's GET /v1/rewards/epochs/N/file." };
        var command = new Command("verify", "Recompute an epoch from its reward file alone, rebuild its Merkle tree and compare the root and the file's content hash with those published on chain. Exit 0: everything matches; 1: something differs (listed).") { epoch, from };
        chain.AddTo(command);
        command.SetAction(async (result, cancellation) =>
        {
            FitOutput();
            var number = result.GetValue(epoch);
            if (number < 0) throw new ArgumentException($"--epoch takes an epoch number (0 or more); {number} is not one.");
            var file = result.GetValue(from);
            byte[] bytes;
            if (file is not null) bytes = await File.ReadAllBytesAsync(file.FullName, cancellation);
            else
            {
                using var api = chain.Client(result);
                bytes = await api.BytesAsync($"/v1/rewards/epochs/{number}/file", cancellation);
            }
            var (rpc, distributor) = await chain.ResolveAsync(result, cancellation);
            var published = await PublishedAsync(rpc, distributor, (ulong)number, cancellation);
            var checks = Check(number, bytes, published);

            var table = new Table().AddColumn("Check").AddColumn("Reward file").AddColumn("Found").AddColumn("Verdict");
            foreach (var c in checks)
                table.AddRow(new Text(c.Name), new Text(c.Expected), new Text(c.Found), c.Passed ? new Markup("[green]match[/]") : new Markup("[red]MISMATCH[/]"));
            AnsiConsole.Write(table);
            var failed = checks.Where(c => !c.Passed).ToList();
            if (failed.Count == 0)
            {
                AnsiConsole.MarkupLineInterpolated($"[green]Epoch {number} verified:[/] the reward file recomputes to the root and content hash distributor {distributor} holds.");
                return 0;
            }
            AnsiConsole.MarkupLineInterpolated($"[red]Epoch {number} does not verify:[/] {string.Join("; ", failed.SelectMany(c => c.Problems.DefaultIfEmpty(c.Name + " differs")))}");
            return Refused;
        });
        return command;
    }

    /// <summary>One line of the verdict: what the file says, what was found, and why not when it differs.</summary>
    private sealed record VerifyCheck(string Name, string Expected, string Found, bool Passed, IReadOnlyList<string> Problems);

    private sealed record PublishedEpoch(string Root, string ContentHash);

    private static List<VerifyCheck> Check(long epoch, byte[] bytes, PublishedEpoch published)
    {
        var contentHash = Hex.Encode0x(Keccak256.Hash(bytes));
        var checks = new List<VerifyCheck>();
        RewardFile? parsed = null;
        try
        {
            parsed = RewardFile.Parse(bytes);
            checks.Add(new VerifyCheck("file", "canonical reward file", RewardFile.CurrentFormat, true, []));
        }
        catch (InvalidDataException e)
        {
            checks.Add(new VerifyCheck("file", "canonical reward file", "not one", false, [e.Message]));
        }
        if (parsed is not null)
        {
            checks.Add(new VerifyCheck("epoch", $"{parsed.Rewards.Epoch}", $"{epoch} (asked)", parsed.Rewards.Epoch == epoch,
                [$"the file is epoch {parsed.Rewards.Epoch}, not {epoch}"]));
            var recomputed = parsed.Recompute();
            checks.Add(new VerifyCheck("recomputed from its policy and inputs", parsed.MerkleRoot ?? "no root", recomputed.RecomputedRoot ?? "no root",
                recomputed.Matches, [.. recomputed.Problems]));
            checks.Add(new VerifyCheck("root on chain", parsed.MerkleRoot ?? "no root", published.Root,
                parsed.MerkleRoot == published.Root && recomputed.RecomputedRoot == published.Root,
                [published.Root == NotPublished ? $"no root is published for epoch {epoch}" : $"the chain holds root {published.Root}, the file recomputes to {recomputed.RecomputedRoot ?? "no root"}"]));
        }
        checks.Add(new VerifyCheck("content hash on chain", contentHash, published.ContentHash, contentHash == published.ContentHash,
            [$"the file's bytes hash to {contentHash}, the chain holds {published.ContentHash}"]));
        return checks;
    }

    private static readonly string NotPublished = "0x" + new string('0', 64);

    private static async Task<PublishedEpoch> PublishedAsync(string rpc, string distributor, ulong epoch, CancellationToken cancellation)
    {
        var web3 = new Web3(rpc);
        try
        {
            var root = await web3.Eth.GetContractQueryHandler<RootOfFunction>().QueryAsync<byte[]>(distributor, new RootOfFunction { Epoch = epoch }).WaitAsync(cancellation);
            var hash = await web3.Eth.GetContractQueryHandler<ContentHashOfFunction>().QueryAsync<byte[]>(distributor, new ContentHashOfFunction { Epoch = epoch }).WaitAsync(cancellation);
            return new PublishedEpoch(root.ToHex(prefix: true), hash.ToHex(prefix: true));
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw new InvalidOperationException($"Could not read epoch {epoch} from the distributor {distributor} at {rpc}: {e.Message}. Is the chain running, and are --chain and --distributor right?", e);
        }
    }

    private static Command Claim()
    {
        var chain = new ChainOptions();
        var key = new Option<string>("--key") { Description = "The contributor's private key: 0x + 64 hex digits, or a file holding them (better: a key on the command line shows in the process list).", Required = true };
        var command = new Command("claim", "Claim your rewards: fetch your proof from the API, send the claim to the distributor as an EIP-1559 transaction signed with your key, and show the amount and your new balance. Exit 1 when there is nothing to claim or the contract refuses.") { key };
        chain.AddTo(command);
        command.SetAction(async (result, cancellation) =>
        {
            FitOutput();
            var secret = ReadKey(result.GetValue(key)!);
            var account = EthKey.FromHex(secret).Address.ToLowerHex();
            using var api = chain.Client(result);
            ClaimProof proof;
            try
            {
                proof = (await api.JsonAsync(HttpMethod.Get, $"/v1/rewards/contributors/{account}/proof", null, cancellation)).Deserialize<ClaimProof>(JsonSerializerOptions.Web)!;
            }
            catch (MarketplaceProblemException e) when (e.Reason == "no_rewards")
            {
                AnsiConsole.MarkupLineInterpolated($"[yellow]Nothing to claim:[/] no published epoch has rewards for {account} yet.");
                return Refused;
            }
            var (rpc, distributor) = await chain.ResolveAsync(result, cancellation);
            if (!proof.Distributor.Equals(distributor, StringComparison.OrdinalIgnoreCase))
                throw new InvalidOperationException($"The API's proof is for the distributor {proof.Distributor}, not {distributor}: check --api and --distributor.");
            var client = await Connect(rpc, secret, cancellation);
            if (client.ChainId != proof.ChainId) throw new InvalidOperationException($"The chain at {rpc} has id {client.ChainId}; the proof is for chain {proof.ChainId}: check --chain.");
            var cumulative = BigInteger.Parse(proof.CumulativeAmount, NumberStyles.None, CultureInfo.InvariantCulture);

            var claimed = await client.QueryAsync<ClaimedFunction, BigInteger>(distributor, new ClaimedFunction { Account = account });
            if (claimed >= cumulative)
            {
                AnsiConsole.MarkupLineInterpolated($"[yellow]Nothing to claim:[/] {account} has already claimed {Tokens(claimed)} of its cumulative {Tokens(cumulative)} (epoch {proof.Epoch}).");
                return Refused;
            }
            Nethereum.RPC.Eth.DTOs.TransactionReceipt receipt;
            try
            {
                receipt = await AnsiConsole.Status().StartAsync($"Claiming {Tokens(cumulative - claimed)} for {account}…", _ => client.SendAsync(distributor, new ClaimFunction
                {
                    Account = account,
                    CumulativeAmount = cumulative,
                    Proof = [.. proof.Proof.Select(p => p.HexToByteArray())],
                }, cancellation));
            }
            catch (ContractRevertedException e)
            {
                AnsiConsole.MarkupLineInterpolated($"[red]The distributor refused the claim:[/] {InWords(e, proof)}");
                return Refused;
            }
            catch (Nethereum.JsonRpc.Client.RpcResponseException e)
            {
                throw new InvalidOperationException($"The chain refused the transaction: {e.RpcError?.Message ?? e.Message}. Does {account} hold ether for gas?", e);
            }
            var paid = receipt.DecodeAllEvents<ClaimedEventDto>().Single().Event;
            var token = await client.QueryAsync<TokenFunction, string>(distributor, new TokenFunction());
            var balance = await client.QueryAsync<BalanceOfFunction, BigInteger>(token, new BalanceOfFunction { Account = account });
            var table = new Table().HideHeaders().AddColumn("").AddColumn("");
            table.AddRow("account", account);
            table.AddRow("epoch", $"{paid.Epoch}");
            table.AddRow("claimed now", $"{Tokens(paid.Amount)} ({paid.Amount} base units)");
            table.AddRow("cumulative claimed", $"{Tokens(paid.CumulativeAmount)}");
            table.AddRow("token balance", $"{Tokens(balance)} ({balance} base units)");
            table.AddRow("transaction", $"{receipt.TransactionHash} (block {receipt.BlockNumber.Value})");
            AnsiConsole.Write(table);
            return 0;
        });
        return command;
    }

    /// <summary>GET /v1/rewards/contributors/{address}/proof, as the rewards API answers it.</summary>
    private sealed record ClaimProof(long Epoch, string Account, string CumulativeAmount, IReadOnlyList<string> Proof, string MerkleRoot, string Distributor, long ChainId);

    /// <summary>The contract's named errors, as a contributor reads them.</summary>
    private static string InWords(ContractRevertedException e, ClaimProof proof) => e.Error switch
    {
        "NothingToClaim" => $"nothing to claim: {Tokens((BigInteger)e.Arguments["alreadyClaimed"]!)} of the cumulative {Tokens((BigInteger)e.Arguments["cumulativeAmount"]!)} is already claimed.",
        "InvalidProof" => $"the proof does not match the distributor's current root (the API's proof is for epoch {proof.Epoch}, root {proof.MerkleRoot}); a newer epoch may have been published since: run the claim again.",
        "NoRootPublished" => "no root has been published yet: nothing can be claimed.",
        _ => e.Message,
    };

    /// <summary>The key itself or a file holding it; never echoed in an error.</summary>
    private static string ReadKey(string value)
    {
        var text = File.Exists(value) ? File.ReadAllText(value).Trim() : value;
        try
        {
            EthKey.FromHex(text);
            return text;
        }
        catch (Exception e) when (e is FormatException or ArgumentException)
        {
            throw new ArgumentException("--key takes a private key (0x + 64 hex digits) or a file holding one; the value given is neither.");
        }
    }

    private static async Task<ChainClient> Connect(string rpc, string secret, CancellationToken cancellation)
    {
        try
        {
            return await ChainClient.ConnectAsync(rpc, secret, cancellationToken: cancellation);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            throw new InvalidOperationException($"The chain at {rpc} did not answer ({e.Message}): is it running, and is --chain right?", e);
        }
    }

    /// <summary>An amount in tokens (18 decimals), without trailing zeros: 1.5 DPR.</summary>
    private static string Tokens(BigInteger units)
    {
        var whole = BigInteger.DivRem(units, BigInteger.Pow(10, 18), out var fraction);
        var decimals = fraction.ToString(CultureInfo.InvariantCulture).PadLeft(18, '0').TrimEnd('0');
        return decimals.Length == 0 ? $"{whole} DPR" : $"{whole}.{decimals} DPR";
    }

    /// <summary>The distributor's token (the compiled ABI's public getter; the chain layer's messages do not name it).</summary>
    [Function("token", "address")]
    private sealed class TokenFunction : FunctionMessage;
}
