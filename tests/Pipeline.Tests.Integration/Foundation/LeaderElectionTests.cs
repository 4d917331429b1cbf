using Microsoft.Extensions.Options;
using Npgsql;
using Pipeline.Infra.Postgres;

namespace Pipeline.Tests.Integration.Foundation;

/// <summary>One leader per name through a session-level advisory lock; a follower trying again uses the session it kept.</summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class LeaderElectionTests(StackFixture fixture)
{
    [Fact]
    public async Task TryLead_FollowerTryingAgain_ReusesItsSessionAndLeadsOnceTheLeaderGoes_Issue16()
    {
        var name = $"it-leader-{Guid.NewGuid():N}";
        await using var sessions = new PostgresSessions(Options.Create(new PostgresOptions { ConnectionString = fixture.PostgresConnectionString }));
        await using var leaders = new LeaderElection(sessions);
        await using var followers = new LeaderElection(sessions);

        var leader = await leaders.TryLeadAsync(name, CancellationToken.None);
        Assert.NotNull(leader);
        Assert.Null(await followers.TryLeadAsync(name, CancellationToken.None));
        var follower = Assert.Single(await SessionsNamedAsync(name, except: leader.ProcessID));
        Assert.Null(await followers.TryLeadAsync(name, CancellationToken.None));
        Assert.Equal([follower], await SessionsNamedAsync(name, except: leader.ProcessID));

        await leader.DisposeAsync();
        await using var next = await LeadOnceFreedAsync(followers, name);
        Assert.Equal(follower, next.ProcessID);
    }

    [Fact]
    public async Task TryLead_FollowerWhoseKeptSessionWasEnded_TriesOnANewSession_Issue16()
    {
        var name = $"it-leader-{Guid.NewGuid():N}";
        await using var sessions = new PostgresSessions(Options.Create(new PostgresOptions { ConnectionString = fixture.PostgresConnectionString }));
        await using var leaders = new LeaderElection(sessions);
        await using var followers = new LeaderElection(sessions);
        var leader = await leaders.TryLeadAsync(name, CancellationToken.None);
        Assert.NotNull(leader);
        Assert.Null(await followers.TryLeadAsync(name, CancellationToken.None));
        var kept = Assert.Single(await SessionsNamedAsync(name, except: leader.ProcessID));

        await ExecuteAsync($"SELECT pg_terminate_backend({kept})");
        await leader.DisposeAsync();
        await using var next = await LeadOnceFreedAsync(followers, name);

        Assert.NotEqual(kept, next.ProcessID);
    }

    /// <summary>
    /// Tries until the lead is taken: a closed session's lock goes when its server process has exited, which follows
    /// the close by a moment (longer on a loaded machine), so a single try right after can still find it held.
    /// </summary>
    private static async Task<NpgsqlConnection> LeadOnceFreedAsync(LeaderElection followers, string name)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            if (await followers.TryLeadAsync(name, CancellationToken.None) is { } lead) return lead;
            Assert.True(DateTime.UtcNow < deadline, "the lead was not freed 10 s after its session closed");
            await Task.Delay(50);
        }
    }

    /// <summary>The server processes of the sessions named <paramref name="name"/>, but the one left out.</summary>
    private async Task<List<int>> SessionsNamedAsync(string name, int except)
    {
        await using var connection = new NpgsqlConnection(fixture.PostgresConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand("SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND pid <> $2 ORDER BY pid", connection)
        {
            Parameters = { new() { Value = name }, new() { Value = except } },
        };
        await using var reader = await command.ExecuteReaderAsync();
        var pids = new List<int>();
        while (await reader.ReadAsync()) pids.Add(reader.GetInt32(0));
        return pids;
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var connection = new NpgsqlConnection(fixture.PostgresConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync();
    }
}
