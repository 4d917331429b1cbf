using Marten;
using Pipeline.Infra.Postgres;
using Weasel.Postgresql.Tables;

namespace Pipeline.Projections.Lake;

/// <summary>
/// The lake manifest's tables, as Weasel schema objects in the store's schema: Marten creates and migrates them with its
/// own, and <see cref="LakeManifest.EnsureSchemaAsync"/> where a process's store was not configured with them.
/// </summary>
public sealed class LakeTables : IConfigureMarten
{
    public void Configure(IServiceProvider services, StoreOptions options) => options.Storage.ExtendedSchemaObjects.AddRange(For(options.DatabaseSchemaName));

    public static Table[] For(string schema)
    {
        var checkpoints = SchemaObjects.Table(schema, "lake_checkpoints");
        checkpoints.AddColumn("lake", "text").AsPrimaryKey();
        checkpoints.AddColumn("last_seq", "bigint").NotNull();
        // Snapshots (as_of) older than this checkpoint lost files to retention.
        checkpoints.AddColumn("snapshots_from", "bigint").NotNull().DefaultValueByExpression("0");

        var files = SchemaObjects.Table(schema, "lake_files");
        files.AddColumn("lake", "text").AsPrimaryKey();
        files.AddColumn("path", "text").AsPrimaryKey();
        files.AddColumn("dataset", "text").NotNull();
        files.AddColumn("date", "date").NotNull();
        files.AddColumn("first_seq", "bigint").NotNull();
        files.AddColumn("last_seq", "bigint").NotNull();
        files.AddColumn("rows", "integer").NotNull();
        files.AddColumn("sha256", "text").NotNull();
        // The checkpoints a file was part of the lake: from the commit that added it until the one that replaced it
        // (compaction), after which it is kept, retired, for snapshots until Lake:SnapshotRetention has passed.
        files.AddColumn("live_from", "bigint").NotNull().DefaultValueByExpression("0");
        files.AddColumn("retired_seq", "bigint");
        files.AddColumn("retired_at", "timestamptz");

        return [checkpoints, files];
    }
}
