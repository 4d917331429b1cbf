using Marten;
using Pipeline.Infra.Postgres;
using Weasel.Postgresql.Tables;

namespace Pipeline.Streams.Processing;

/// <summary>
/// The processors' tables, as Weasel schema objects in the store's schema: Marten creates and migrates them with its own
/// when a host starts, and <see cref="ProcessingStore.EnsureSchemaAsync"/> where a process's store was not configured with them.
/// </summary>
public sealed class ProcessingTables : IConfigureMarten
{
    public void Configure(IServiceProvider services, StoreOptions options) => options.Storage.ExtendedSchemaObjects.AddRange(For(options.DatabaseSchemaName));

    public static Table[] For(string schema)
    {
        // The seq each device's accepted readings took, and by which reading: equivocation is decided against it. Whether
        // a reading was processed at all is mt_events' to say (its unique index on the event id, which is the reading id's).
        var accepted = SchemaObjects.Table(schema, "accepted_seqs");
        accepted.AddColumn("device", "text").AsPrimaryKey();
        accepted.AddColumn("seq", "bigint").AsPrimaryKey();
        accepted.AddColumn("reading_id", "bytea").NotNull();

        var positions = SchemaObjects.Table(schema, "device_positions");
        positions.AddColumn("device", "text").AsPrimaryKey();
        positions.AddColumn("latitude", "double precision").NotNull();
        positions.AddColumn("longitude", "double precision").NotNull();
        positions.AddColumn("device_time", "timestamp with time zone").NotNull();

        var offsets = SchemaObjects.Table(schema, "consumer_offsets");
        offsets.AddColumn("broker", "text").AsPrimaryKey();
        offsets.AddColumn("group_id", "text").AsPrimaryKey();
        offsets.AddColumn("topic", "text").AsPrimaryKey();
        offsets.AddColumn("partition", "integer").AsPrimaryKey();
        offsets.AddColumn("next_offset", "bigint").NotNull();

        var letters = SchemaObjects.Table(schema, "dead_letters");
        // The relay sends letters in the order they were recorded, and marks them sent by id.
        letters.AddColumn("id", "bigint").BigAutoIncrement().NotNull();
        letters.AddColumn("broker", "text").AsPrimaryKey();
        letters.AddColumn("source_topic", "text").AsPrimaryKey();
        letters.AddColumn("source_partition", "integer").AsPrimaryKey();
        letters.AddColumn("source_offset", "bigint").AsPrimaryKey();
        letters.AddColumn("device", "text");
        letters.AddColumn("reason", "text").NotNull();
        letters.AddColumn("detail", "text").NotNull();
        letters.AddColumn("value", "bytea").NotNull();
        letters.AddColumn("received_at", "timestamp with time zone").NotNull();
        letters.AddColumn("written", "boolean").NotNull().DefaultValueByExpression("false");
        letters.Indexes.Add(new IndexDefinition("dead_letters_id_key") { Columns = ["id"], IsUnique = true });
        letters.Indexes.Add(new IndexDefinition("dead_letters_pending") { Columns = ["id"], Predicate = "NOT written" });

        var checkpoints = SchemaObjects.Table(schema, "dead_letter_checkpoints");
        checkpoints.AddColumn("broker", "text").AsPrimaryKey();
        checkpoints.AddColumn("topic", "text").AsPrimaryKey();
        checkpoints.AddColumn("partition", "integer").AsPrimaryKey();
        checkpoints.AddColumn("verified_offset", "bigint").NotNull();

        return [accepted, positions, offsets, letters, checkpoints];
    }
}
