using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Infra.Hosting;
using Pipeline.Rewards.Stage;

namespace Pipeline.Rewards.Api;

/// <summary>The rewards API's own reasons for refusing a request (explained at /problems/{reason}).</summary>
public static class RewardsReason
{
    public const string UnknownEpoch = "unknown_epoch";
    public const string NoRewards = "no_rewards";
    public const string ChainUnavailable = "chain_unavailable";
    public const string RewardFileUnavailable = "reward_file_unavailable";
    public const string InvalidRequest = "invalid_request";

    public static IReadOnlyList<ProblemExplanation> Explanations { get; } =
    [
        new(UnknownEpoch, StatusCodes.Status404NotFound, "The epoch is not closed yet (or never will be: it is before the first one). GET /v1/rewards/epochs lists the epochs and their status."),
        new(NoRewards, StatusCodes.Status404NotFound, "The address has no leaf in the latest published epoch's tree: it has earned nothing yet, or the epoch it earned in is not published yet."),
        new(ChainUnavailable, StatusCodes.Status503ServiceUnavailable, "The chain does not answer (or the contracts are not deployed yet); try again shortly."),
        new(RewardFileUnavailable, StatusCodes.Status503ServiceUnavailable, "The epoch's reward file is missing or differs from its recorded content hash, and computing it again from the epoch's record did not give it back; the operator must restore it from a backup."),
    ];
}

/// <summary>The rewards API on the API port: the chain, epochs and their roots, a contributor's rewards, proofs and explanations.</summary>
public static class RewardsEndpoints
{
    public const int MaxEpochsPerPage = 500;

    public static IEndpointRouteBuilder MapRewardsApi(this IEndpointRouteBuilder app, int port)
    {
        var v1 = app.MapGroupOnPort("/v1", port)
            .WithTags("Rewards")
            .AddEndpointFilter(Unavailable)
            .ProducesProblem(StatusCodes.Status400BadRequest)
            .ProducesProblem(StatusCodes.Status503ServiceUnavailable);

        v1.MapGet("/chain", async (RewardsQueries queries, CancellationToken cancellation) => TypedResults.Ok(await queries.ChainAsync(cancellation)))
            .WithName("DescribeChain")
            .WithSummary("The chain the rewards are paid on")
            .WithDescription("Chain id, the reward token, the distributor, the payments contract, the treasury and the confirmations a root waits for; the RPC URL only when it is the local development chain.");

        var rewards = v1.MapGroup("/rewards");
        rewards.MapGet("/epochs", async Task<Results<Ok<IReadOnlyList<EpochView>>, ProblemHttpResult>> (HttpContext context, RewardsQueries queries, int? limit, long? before, CancellationToken cancellation) =>
                limit is < 1 or > MaxEpochsPerPage
                    ? Invalid(context, $"limit is 1 to {MaxEpochsPerPage}.")
                    : TypedResults.Ok(await queries.EpochsAsync(limit ?? 50, before, cancellation)))
            .WithName("ListRewardEpochs")
            .WithSummary("Epochs, newest first, with their status and roots")
            .WithDescription("Status: open (still running or in its grace), final (its data is final, not yet calculated), calculated, publishing, published. Amounts are decimal strings of base units (18 decimals). Page with ?before=<epoch>.");

        rewards.MapGet("/epochs/{epoch:long}", async Task<Results<Ok<EpochView>, ProblemHttpResult>> (HttpContext context, long epoch, RewardsQueries queries, CancellationToken cancellation) =>
                await queries.EpochAsync(epoch, cancellation) is { } found ? TypedResults.Ok(found) : UnknownEpoch(context, epoch))
            .WithName("GetRewardEpoch")
            .WithSummary("One closed epoch");

        rewards.MapGet("/epochs/{epoch:long}/file", async Task<Results<FileContentHttpResult, ProblemHttpResult>> (HttpContext context, long epoch, RewardsQueries queries, CancellationToken cancellation) =>
                await queries.FileBytesAsync(epoch, cancellation) is { } bytes ? TypedResults.File(bytes, "application/json", $"epoch-{epoch}.json") : UnknownEpoch(context, epoch))
            .WithName("GetRewardFile")
            .WithSummary("The epoch's reward file: canonical JSON")
            .WithDescription("The exact bytes whose keccak256 is the content hash published with the root; with the policy, the inputs and the previous cumulative amounts anyone can compute the epoch again (depin rewards verify --from).");

        rewards.MapGet("/contributors/{address}", async Task<Results<Ok<ContributorView>, ProblemHttpResult>> (HttpContext context, string address, RewardsQueries queries, CancellationToken cancellation) =>
                Address(address) is { } account ? TypedResults.Ok(await queries.ContributorAsync(account, cancellation)) : BadAddress(context, address))
            .WithName("GetContributorRewards")
            .WithSummary("A contributor's rewards per epoch and cumulative, what they claimed on chain and can claim");

        rewards.MapGet("/contributors/{address}/proof", async Task<Results<Ok<ProofView>, ProblemHttpResult>> (HttpContext context, string address, RewardsQueries queries, CancellationToken cancellation) =>
            {
                if (Address(address) is not { } account) return BadAddress(context, address);
                return await queries.ProofAsync(account, cancellation) is { } proof
                    ? TypedResults.Ok(proof)
                    : Problem(context, StatusCodes.Status404NotFound, RewardsReason.NoRewards, $"{account.ToLowerHex()} has no leaf in the latest published epoch's tree.");
            })
            .WithName("GetContributorProof")
            .WithSummary("The Merkle proof to claim with, for the latest published epoch")
            .WithDescription("Submit claim(account, cumulativeAmount, proof) to the distributor (anyone may; the tokens go to the account).");

        rewards.MapGet("/contributors/{address}/epochs/{epoch:long}/explain", async Task<Results<Ok<RewardExplanation>, ProblemHttpResult>> (HttpContext context, string address, long epoch, RewardsQueries queries, CancellationToken cancellation) =>
            {
                if (Address(address) is not { } account) return BadAddress(context, address);
                return await queries.ExplainAsync(account, epoch, cancellation) is { } explained ? TypedResults.Ok(explained) : UnknownEpoch(context, epoch);
            })
            .WithName("ExplainContributorReward")
            .WithSummary("Explain my reward: per device, the score's components, readings counted, rejections, sales and amounts")
            .WithDescription("Fractions are ppm (1000000 = 1): score = readings counted × quality × agreement × (1000000 − rejection penalty), as the README's formula says.");
        return app;
    }

    private static EthAddress? Address(string text) => EthAddress.TryParse(text.AsSpan(), out var address) ? address : null;

    private static ProblemHttpResult BadAddress(HttpContext context, string text) =>
        Problems.For(context, ReasonCode.BadAddress, $"'{(text.Length > 50 ? text[..50] + "…" : text)}' is not an address: 0x + 40 hex digits.", retryAfterSeconds: 0);

    private static ProblemHttpResult UnknownEpoch(HttpContext context, long epoch) =>
        Problem(context, StatusCodes.Status404NotFound, RewardsReason.UnknownEpoch, $"Epoch {epoch} is not closed; GET /v1/rewards/epochs lists the epochs.");

    private static ProblemHttpResult Invalid(HttpContext context, string detail) => Problem(context, StatusCodes.Status400BadRequest, RewardsReason.InvalidRequest, detail);

    private static ProblemHttpResult Problem(HttpContext context, int status, string reason, string detail) =>
        TypedResults.Problem(detail: detail, statusCode: status, title: reason.Replace('_', ' '), type: $"/problems/{reason}", instance: context.Request.Path,
            extensions: new Dictionary<string, object?> { ["reason"] = reason });

    /// <summary>A chain that does not answer, or a reward file that cannot be given back as recorded, is a 503 with a reason, not a 500.</summary>
    private static async ValueTask<object?> Unavailable(EndpointFilterInvocationContext invocation, EndpointFilterDelegate next)
    {
        try
        {
            return await next(invocation);
        }
        catch (RewardsUnavailableException e)
        {
            invocation.HttpContext.Response.Headers.RetryAfter = "5";
            return Problem(invocation.HttpContext, StatusCodes.Status503ServiceUnavailable, RewardsReason.ChainUnavailable, e.Message);
        }
        catch (RewardFileUnavailableException e)
        {
            // The full message names the server's folders: it goes to the log, the client gets what to expect.
            invocation.HttpContext.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(RewardsEndpoints)).LogError("{Message}", e.Message);
            return Problem(invocation.HttpContext, StatusCodes.Status503ServiceUnavailable, RewardsReason.RewardFileUnavailable,
                $"The reward file of epoch {e.Epoch} is not available as recorded (its keccak256 must be {e.ContentHash}); the operator has been told to restore it.");
        }
    }
}
