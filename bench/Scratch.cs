using Microsoft.Extensions.Logging.Abstractions;
using Pipeline.Cli.Hosting;
using Pipeline.Infra.Postgres;
using Pipeline.Infra.Stack;
using Spectre.Console;

namespace Pipeline.Bench;

/// <summary>A throw-away stack for one benchmark: its own PostgreSQL cluster on a free port and an embedded broker, in a temporary folder.</summary>
public sealed class Scratch : IAsyncDisposable
{
    private Scratch(string folder, DevStack stack)
    {
        Folder = folder;
        Stack = stack;
    }

    public string Folder { get; }
    public DevStack Stack { get; }

    public static async Task<Scratch> StartAsync(bool withEventStore = true)
    {
        var folder = Directory.CreateTempSubdirectory("depin-bench-").FullName;
        var options = new StackOptions
        {
            DataDirectory = folder,
            WithEventStore = withEventStore,
            Postgres = new PostgresOptions { Port = FreePort() },
            ConfigureStore = PipelineStore.Configure,
        };
        var stack = await AnsiConsole.Status().StartAsync("Starting a scratch PostgreSQL cluster and broker…", _ => DevStack.StartAsync(options, NullLogger.Instance, CancellationToken.None));
        return new Scratch(folder, stack);
    }

    public static int FreePort()
    {
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        return ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
    }

    public async ValueTask DisposeAsync()
    {
        await Stack.DisposeAsync();
        Directory.Delete(Folder, recursive: true);
    }
}
