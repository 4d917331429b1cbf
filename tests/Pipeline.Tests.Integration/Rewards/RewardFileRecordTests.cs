using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Pipeline.Cli.Hosting;
using Pipeline.Core.Crypto;
using Pipeline.Rewards.Epochs;
using Pipeline.Rewards.Stage;
using Pipeline.Tests.Integration.Projections;

namespace Pipeline.Tests.Integration.Rewards;

/// <summary>
/// A reward file is derived from the epoch's record (EpochClosed and RewardsCalculated): two closers racing over one
/// epoch with different cuts, a file lost or changed on disk. The closers run here by hand on a clock of the test's own,
/// against the pipeline's real event store and lake (the stack without its rewards stage, so nothing else closes).
/// </summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class RewardFileRecordTests(StackFixture fixture) : IAsyncLifetime
{
    private const Roles WithoutRewardsStage = Roles.Api | Roles.Ingest | Roles.Streams | Roles.Projections;
    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(2);
    private readonly string _data = Directory.CreateTempSubdirectory("depin-rfiles-").FullName;

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync()
    {
        Directory.Delete(_data, recursive: true);
        return Task.CompletedTask;
    }

    [Fact]
    public async Task EpochCloser_AnotherCloserRecordsALaterCutBetweenThisOnesReadAndItsSave_LeavesTheRecordedFile_AndTheNextEpochCloses()
    {
        await using var host = await StartAsync("it_rfiles_race");
        var (device, epoch, clock) = await ReadingsInAnEpochAsync(host);
        var first = Closer(host, clock);
        var second = Closer(host, clock);

        // The first closer reads its cut; a reading of the same epoch arrives late; the second closer, with a later cut
        // that holds it, closes the epoch; only then does the first one try to record its own.
        var early = await first.CutNextAsync(CancellationToken.None);
        Assert.Equal(epoch, early!.Closed.Epoch);
        await SendLateAsync(device, epoch);
        await WaitForLakeAsync(host, device);
        Assert.True(await second.CloseNextAsync(CancellationToken.None));
        Assert.False(await first.RecordAsync(early, CancellationToken.None));

        var recorded = (await RecordAsync(host, epoch))!;
        Assert.True(recorded.ThroughSequence > early.Closed.ThroughSequence);
        Assert.NotEqual(early.File.ContentHash(), recorded.Rewards!.ContentHash);
        Assert.Equal(recorded.Rewards.ContentHash, HashOnDisk(host, epoch));

        clock.Now = EndOf(epoch + 1) + Grace;
        Assert.True(await CloseNextAsync(host, first));
        Assert.Equal(epoch + 1, (await RecordAsync(host, epoch + 1))!.Epoch);
    }

    [Fact]
    public async Task RewardFile_DeletedAfterItsEpochWasRecorded_IsComputedAgainFromTheRecord_ServedAsRecorded_AndCounted()
    {
        await using var host = await StartAsync("it_rfiles_deleted");
        var (epoch, clock) = await CloseOneEpochAsync(host);
        var recorded = (await RecordAsync(host, epoch))!.Rewards!.ContentHash;
        File.Delete(Files(host).JsonPath(epoch));

        var served = await host.Api.GetByteArrayAsync($"/v1/rewards/epochs/{epoch}/file");
        Assert.Equal(recorded, Hex.Encode0x(Keccak256.Hash(served)));
        Assert.Equal(recorded, HashOnDisk(host, epoch));
        Assert.Equal(1, await PrometheusScrape.ValueOnceAsync(host.Api, "pipeline_rewards_files_repaired_total", 1));

        // Lost again, the next epoch's close (which starts from its cumulative amounts) repairs it too.
        File.Delete(Files(host).JsonPath(epoch));
        clock.Now = EndOf(epoch + 1) + Grace;
        Assert.True(await CloseNextAsync(host, Closer(host, clock)));
        Assert.Equal(recorded, HashOnDisk(host, epoch));
        Assert.Equal(2, await PrometheusScrape.ValueOnceAsync(host.Api, "pipeline_rewards_files_repaired_total", 2));
    }

    [Fact]
    public async Task RewardFile_WithAnAmountChangedButStillCanonical_IsRepairedFromTheRecord_BecauseTheRecordedCutComputesAgainToTheRecordedHash()
    {
        await using var host = await StartAsync("it_rfiles_tampered");
        var (epoch, clock) = await CloseOneEpochAsync(host);
        var recorded = (await RecordAsync(host, epoch))!.Rewards!.ContentHash;
        var path = Files(host).JsonPath(epoch);
        var original = RewardFile.Read(path);
        var contributor = original.Rewards.Contributors[0];
        var forged = original with { Rewards = original.Rewards with { Contributors = [contributor with { EmissionAmount = contributor.EmissionAmount + 1 }, .. original.Rewards.Contributors.Skip(1)] } };
        File.WriteAllBytes(path, forged.ToCanonicalJson());
        Assert.Equal(forged.ContentHash(), Hex.Encode0x(Keccak256.Hash(RewardFile.Read(path).ToCanonicalJson())));
        Assert.NotEqual(recorded, HashOnDisk(host, epoch));

        clock.Now = EndOf(epoch + 1) + Grace;
        Assert.True(await CloseNextAsync(host, Closer(host, clock)));
        Assert.Equal(recorded, HashOnDisk(host, epoch));
        // The next epoch's cumulative amounts start from the recorded ones, not the forged one.
        var next = (await RecordAsync(host, epoch + 1))!;
        Assert.Equal(contributor.CumulativeAmount.ToString(), next.Rewards!.Contributors.Single(c => c.Account == contributor.Account.ToLowerHex()).Cumulative);
    }

    [Fact]
    public async Task RewardFile_MissingWhenThePolicyInForceNoLongerGivesTheRecordedHash_IsRefusedNamingTheRecordedHash_AndTheApiAnswers503()
    {
        var policy = Path.Combine(_data, "policy.json");
        File.Copy(Path.Combine(Support.RepositoryTools.Root, "rewards", "policies", "v1.json"), policy);
        await using var host = await RewardsStack.StartAsync(fixture, "it_rfiles_refused", _data, $"http://127.0.0.1:{TestHost.FreePort()}", roles: WithoutRewardsStage, settings: new() { ["Rewards:Policy"] = policy });
        var (epoch, clock) = await CloseOneEpochAsync(host);
        var recorded = (await RecordAsync(host, epoch))!.Rewards!.ContentHash;
        File.Delete(Files(host).JsonPath(epoch));
        // The operator changes the policy in force: computed again, the epoch no longer gives the recorded file.
        File.WriteAllText(policy, File.ReadAllText(policy).Replace("\"emissionPerEpoch\": \"1000000000000000000000\"", "\"emissionPerEpoch\": \"2000000000000000000000\"", StringComparison.Ordinal));

        clock.Now = EndOf(epoch + 1) + Grace;
        var refused = await Assert.ThrowsAsync<RewardFileUnavailableException>(() => CloseNextAsync(host, Closer(host, clock)));
        Assert.Contains($"recorded content hash {recorded}", refused.Message);
        Assert.Contains($"keccak256 must be {recorded}", refused.Message);
        Assert.Contains("the policy in force hashes to", refused.Message);
        Assert.Null(HashOnDisk(host, epoch));
        Assert.Null(await RecordAsync(host, epoch + 1));

        var response = await host.Api.GetAsync($"/v1/rewards/epochs/{epoch}/file");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, response.StatusCode);
        var problem = await response.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal("reward_file_unavailable", problem.GetProperty("reason").GetString());
        Assert.Contains(recorded, problem.GetProperty("detail").GetString());
        // Nothing repaired, so nothing counted (a counter never added to has no sample).
        Assert.False((await PrometheusScrape.FromAsync(host.Api)).Has("pipeline_rewards_files_repaired_total"));
    }

    private Task<TestHost> StartAsync(string schema) =>
        RewardsStack.StartAsync(fixture, schema, _data, $"http://127.0.0.1:{TestHost.FreePort()}", roles: WithoutRewardsStage);

    /// <summary>A closer of the rewards stage, as a second process would have one, on the test's clock.</summary>
    private static EpochCloser Closer(TestHost host, TimeProvider clock) => ActivatorUtilities.CreateInstance<EpochCloser>(host.App.Services, clock);

    /// <summary>Closes the next epoch once the lake has every event (the closed epochs' own too), as the stage would on a later poll.</summary>
    private static async Task<bool> CloseNextAsync(TestHost host, EpochCloser closer)
    {
        await LakeProbe.WaitForLakeAsync(host);
        return await closer.CloseNextAsync(CancellationToken.None);
    }

    private static RewardFiles Files(TestHost host) => host.Create<RecordedRewardFiles>().Files;

    /// <summary>A registered device's readings in the epoch now running, in the lake; and a clock past the epoch's grace.</summary>
    private static async Task<(RewardedDevice Device, long Epoch, ManualClock Clock)> ReadingsInAnEpochAsync(TestHost host)
    {
        var device = new RewardedDevice(host, "car");
        var epoch = await RewardsStack.EpochWithRoomAsync(TimeSpan.FromSeconds(30));
        await device.RegisterAsync();
        await device.SendGoodAsync(5);
        await WaitForLakeAsync(host, device);
        return (device, epoch, new ManualClock(EndOf(epoch) + Grace));
    }

    /// <summary>A device's readings in the epoch now running, closed by a closer whose clock is past the epoch's grace.</summary>
    private static async Task<(long Epoch, ManualClock Clock)> CloseOneEpochAsync(TestHost host)
    {
        var (_, epoch, clock) = await ReadingsInAnEpochAsync(host);
        Assert.True(await CloseNextAsync(host, Closer(host, clock)));
        Assert.Equal(epoch, (await RecordAsync(host, epoch))!.Epoch);
        return (epoch, clock);
    }

    /// <summary>One more good reading in the epoch, whatever the time now.</summary>
    private static Task SendLateAsync(RewardedDevice device, long epoch)
    {
        var at = DateTimeOffset.UtcNow < EndOf(epoch) ? DateTimeOffset.UtcNow : EndOf(epoch) - TimeSpan.FromMilliseconds(1);
        return device.SendAsync(at, RewardedDevice.Position(53.35 + (device.LastSeq + 1) * 0.00001, 50));
    }

    private static async Task WaitForLakeAsync(TestHost host, RewardedDevice device)
    {
        await device.WaitForProcessorsAsync();
        await LakeProbe.WaitForLakeAsync(host);
    }

    private static async Task<RewardEpoch?> RecordAsync(TestHost host, long epoch)
    {
        await using var session = host.Store.QuerySession();
        return await session.LoadAsync<RewardEpoch>(RewardEpoch.StreamId(epoch));
    }

    private static string? HashOnDisk(TestHost host, long epoch) =>
        Files(host).ReadBytes(epoch) is { } bytes ? Hex.Encode0x(Keccak256.Hash(bytes)) : null;

    private static DateTimeOffset EndOf(long epoch) => DateTimeOffset.UnixEpoch + RewardsStack.EpochLength * (epoch + 1);

    private sealed class ManualClock(DateTimeOffset now) : TimeProvider
    {
        public DateTimeOffset Now { get; set; } = now;

        public override DateTimeOffset GetUtcNow() => Now;
    }
}
