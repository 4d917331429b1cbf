using Marten;
using Npgsql;
using Pipeline.Infra.Postgres;

namespace Pipeline.Projections.Lake;

/// <summary>
/// What the lake reads and records in PostgreSQL, from dependency injection: the event store it projects, the
/// manifests of its lakes, the feed of reading events, and the lead of one projector per lake.
/// </summary>
public sealed class LakeStore(IDocumentStore store, NpgsqlDataSource dataSource, PostgresSessions sessions, LeaderElection leaders, TimeProvider clock)
{
    /// <summary>The clock compaction and the retiring of replaced files go by.</summary>
    public TimeProvider Clock => clock;

    public IDocumentStore Events => store;

    public string Schema => store.Schema();

    public LakeManifest Manifest(string lake) => new(store, dataSource, lake);

    public EventFeed Feed() => new(sessions.Pool(EventFeed.ApplicationName(Schema)), Schema);

    /// <summary>The session holding the lead of <paramref name="lake"/>, or null while another one holds it.</summary>
    public Task<NpgsqlConnection?> TryLeadAsync(string lake, CancellationToken cancellation) => leaders.TryLeadAsync($"depin:lake:{lake}", cancellation);
}
