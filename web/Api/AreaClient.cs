using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using Pipeline.Infra.Hosting;
using Pipeline.Marketplace;
using Pipeline.Marketplace.Accounts;
using Pipeline.Marketplace.Catalog;
using Pipeline.Marketplace.Contributors;
using Pipeline.Marketplace.ExportJobs;
using Pipeline.Marketplace.Grants;

namespace Pipeline.Web.Api;

/// <summary>
/// The areas' HTTP APIs as the web app calls them, on the visitor's behalf: a buyer's key or a contributor's session
/// goes with each request, so the marketplace, registry and rewards decide what a visitor may see exactly as they do
/// for any other client. Refusals come back as <see cref="ApiProblemException"/>.
/// </summary>
public sealed class AreaClient(HttpClient http)
{
    public static JsonSerializerOptions Json => ServiceDefaults.WireJson;

    public Task<List<DatasetSummary>> DatasetsAsync(CancellationToken cancellation) => GetAsync<List<DatasetSummary>>("/v1/datasets", null, cancellation);

    public Task<DatasetDetail> DatasetAsync(string name, CancellationToken cancellation) => GetAsync<DatasetDetail>($"/v1/datasets/{Uri.EscapeDataString(name)}", null, cancellation);

    public Task<List<Dictionary<string, JsonElement>>> PreviewAsync(string name, CancellationToken cancellation) =>
        GetAsync<List<Dictionary<string, JsonElement>>>($"/v1/datasets/{Uri.EscapeDataString(name)}/preview", null, cancellation);

    /// <summary>Rows over time of a dataset and, with a signal, its mean, min and max per bucket; of one device or one 1° cell (near) or all.</summary>
    public Task<DatasetSeriesView> SeriesAsync(string name, string? signal, string? device, string? near, CancellationToken cancellation)
    {
        var query = string.Join("&", new[] { ("signal", signal), ("device", device), ("near", near) }
            .Where(p => !string.IsNullOrEmpty(p.Item2)).Select(p => $"{p.Item1}={Uri.EscapeDataString(p.Item2!)}"));
        return GetAsync<DatasetSeriesView>($"/v1/datasets/{Uri.EscapeDataString(name)}/series{(query.Length > 0 ? "?" + query : "")}", null, cancellation);
    }

    public Task<List<AccountEntry>> HistoryAsync(string key, int limit, CancellationToken cancellation) => GetAsync<List<AccountEntry>>($"/v1/account/history?limit={limit}", key, cancellation);

    public Task<AccountView> AccountAsync(string key, CancellationToken cancellation) => GetAsync<AccountView>("/v1/account", key, cancellation);

    public Task<GrantView> BuyGrantAsync(string key, GrantRequest request, CancellationToken cancellation) => PostAsync<GrantView>("/v1/grants", key, request, cancellation);

    /// <summary>Runs a buyer's SQL; the caller reads (and disposes) the response, whose headers carry rows and credits.</summary>
    public Task<HttpResponseMessage> QueryAsync(string key, QueryRequest request, CancellationToken cancellation) =>
        SendAsync(HttpMethod.Post, "/v1/query", key, JsonContent.Create(request, options: Json), cancellation, HttpCompletionOption.ResponseHeadersRead);

    public Task<ExportJob> StartExportAsync(string key, ExportRequestBody request, CancellationToken cancellation) => PostAsync<ExportJob>("/v1/exports", key, request, cancellation);

    /// <summary>An export's status; with <paramref name="waitSeconds"/>, once it is done or failed if that comes sooner.</summary>
    public Task<ExportJob> ExportAsync(string key, string id, int waitSeconds, CancellationToken cancellation) =>
        GetAsync<ExportJob>($"/v1/exports/{Uri.EscapeDataString(id)}?wait={waitSeconds}", key, cancellation);

    /// <summary>A buyer-only download (an export's manifest or file, a grant's feed), streamed as it arrives.</summary>
    public Task<HttpResponseMessage> StreamAsync(string path, string key, CancellationToken cancellation) =>
        SendAsync(HttpMethod.Get, path, key, null, cancellation, HttpCompletionOption.ResponseHeadersRead);

    public Task<LoginChallenge> ChallengeAsync(string address, CancellationToken cancellation) =>
        PostAsync<LoginChallenge>("/v1/contributors/challenge", null, new ChallengeRequest(address), cancellation);

    public Task<ContributorSession> SignInAsync(string message, string signature, CancellationToken cancellation) =>
        PostAsync<ContributorSession>("/v1/contributors/session", null, new LoginRequest(message, signature), cancellation);

    public Task<List<ContributorDevice>> DevicesAsync(string session, CancellationToken cancellation) => GetAsync<List<ContributorDevice>>("/v1/contributor/devices", session, cancellation);

    public Task<List<DeviceSales>> SalesAsync(string session, CancellationToken cancellation) => GetAsync<List<DeviceSales>>("/v1/contributor/sales", session, cancellation);

    public Task<ProblemExplanation> ExplainReasonAsync(string reason, CancellationToken cancellation) => GetAsync<ProblemExplanation>($"/problems/{Uri.EscapeDataString(reason)}", null, cancellation);

    public Task<ChainView> ChainAsync(CancellationToken cancellation) => GetAsync<ChainView>("/v1/chain", null, cancellation);

    public Task<ContributorRewards> RewardsAsync(string address, CancellationToken cancellation) =>
        GetAsync<ContributorRewards>($"/v1/rewards/contributors/{Uri.EscapeDataString(address)}", null, cancellation);

    public Task<RewardExplanation> ExplainRewardAsync(string address, long epoch, CancellationToken cancellation) =>
        GetAsync<RewardExplanation>($"/v1/rewards/contributors/{Uri.EscapeDataString(address)}/epochs/{epoch}/explain", null, cancellation);

    public Task<ClaimProof> ProofAsync(string address, CancellationToken cancellation) =>
        GetAsync<ClaimProof>($"/v1/rewards/contributors/{Uri.EscapeDataString(address)}/proof", null, cancellation);

    public Task<List<EpochView>> EpochsAsync(int limit, CancellationToken cancellation) => GetAsync<List<EpochView>>($"/v1/rewards/epochs?limit={limit}", null, cancellation);

    /// <summary>The API host's Prometheus scrape, the same text Prometheus reads.</summary>
    public async Task<string> MetricsAsync(CancellationToken cancellation)
    {
        using var response = await SendAsync(HttpMethod.Get, "/metrics", null, null, cancellation);
        return await response.Content.ReadAsStringAsync(cancellation);
    }

    private async Task<T> GetAsync<T>(string path, string? bearer, CancellationToken cancellation)
    {
        using var response = await SendAsync(HttpMethod.Get, path, bearer, null, cancellation);
        return (await response.Content.ReadFromJsonAsync<T>(Json, cancellation))!;
    }

    private async Task<T> PostAsync<T>(string path, string? bearer, object body, CancellationToken cancellation)
    {
        using var response = await SendAsync(HttpMethod.Post, path, bearer, JsonContent.Create(body, body.GetType(), options: Json), cancellation);
        return (await response.Content.ReadFromJsonAsync<T>(Json, cancellation))!;
    }

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, string? bearer, HttpContent? content, CancellationToken cancellation,
        HttpCompletionOption completion = HttpCompletionOption.ResponseContentRead)
    {
        using var request = new HttpRequestMessage(method, path) { Content = content };
        if (bearer is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", bearer);
        var response = await http.SendAsync(request, completion, cancellation);
        if (response.IsSuccessStatusCode) return response;
        using (response) throw await ApiProblemException.ReadAsync(response, cancellation);
    }
}
