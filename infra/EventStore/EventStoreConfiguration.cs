using JasperFx;
using JasperFx.Events;
using Marten;
using Pipeline.Core.Events;
using Weasel.Core;

namespace Pipeline.Infra.EventStore;

/// <summary>
/// The Marten event store as every stage opens it: one stream per device keyed by its lower-case address,
/// events stored under their versioned wire names, the schema applied explicitly at start.
/// </summary>
public static class EventStoreConfiguration
{
    public const string DefaultSchema = "depin";

    public static DocumentStore Create(string connectionString, string schema = DefaultSchema, Action<StoreOptions>? configure = null) =>
        DocumentStore.For(options =>
        {
            options.Connection(connectionString);
            options.DatabaseSchemaName = schema;
            options.Events.StreamIdentity = StreamIdentity.AsString;
            // One function call per stream per batch, timestamps from the application clock (not the session time zone).
            options.Events.AppendMode = EventAppendMode.QuickWithServerTimestamps;
            // Event ids derive from reading ids: a replay that slipped past every other check still cannot store twice.
            options.Events.EnableUniqueIndexOnEventId = true;
            options.AutoCreateSchemaObjects = AutoCreate.None;
            options.UseSystemTextJsonForSerialization(EnumStorage.AsString, Casing.CamelCase);
            foreach (var (type, name) in EventNames.All) options.Events.MapEventType(type, name);
            configure?.Invoke(options);
        });

    /// <summary>Creates or updates every table, function and index the store needs.</summary>
    public static Task ApplySchemaAsync(IDocumentStore store) =>
        store.Storage.ApplyAllConfiguredChangesToDatabaseAsync(AutoCreate.CreateOrUpdate);
}
