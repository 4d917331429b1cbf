using Marten;
using Pipeline.Streams.Registry;

namespace Pipeline.Cli.Hosting;

/// <summary>Every stage's additions to the event store, so that any process opens it with the same schema.</summary>
public static class PipelineStore
{
    public static void Configure(StoreOptions options)
    {
        options.AddRegistry();
    }
}
