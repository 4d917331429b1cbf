using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Pipeline.Web.Api;

namespace Pipeline.Web.Contributor;

/// <summary>The claim transaction for the signed-in contributor's wallet: built from the rewards API's proof, sent by the wallet.</summary>
internal static class ContributorWallet
{
    public static void MapContributorWallet(this IEndpointRouteBuilder web) =>
        web.MapGet("/contributor/claim-transaction", async (AreaClient api, VisitorCookies cookies, HttpContext context) =>
        {
            if (cookies.Contributor(context) is not { } session)
                return Results.Problem(statusCode: StatusCodes.Status401Unauthorized, detail: "Sign in with your wallet first.", extensions: new Dictionary<string, object?> { ["reason"] = "no_key" });
            try
            {
                var proof = await api.ProofAsync(session.Address, context.RequestAborted);
                var chain = await api.ChainAsync(context.RequestAborted);
                return Results.Json(new
                {
                    from = session.Address,
                    to = proof.Distributor,
                    data = ClaimTransaction.CallData(proof.Account, proof.CumulativeAmount, proof.Proof),
                    chainId = "0x" + proof.ChainId.ToString("x", System.Globalization.CultureInfo.InvariantCulture),
                    epoch = proof.Epoch,
                    cumulativeAmount = proof.CumulativeAmount,
                    rpcUrl = chain.RpcUrl,
                });
            }
            catch (ApiProblemException problem)
            {
                return Results.Problem(statusCode: (int)problem.Status, detail: problem.Detail, extensions: new Dictionary<string, object?> { ["reason"] = problem.Reason });
            }
        });
}
