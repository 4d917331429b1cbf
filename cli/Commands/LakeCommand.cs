using System.CommandLine;
using Microsoft.Extensions.Logging.Abstractions;
using Pipeline.Cli.Hosting;
using Pipeline.Core.Files;
using Pipeline.Infra.Development;
using Pipeline.Infra.Postgres;
using Pipeline.Projections;
using Pipeline.Projections.Lake;
using Spectre.Console;

namespace Pipeline.Cli.Commands;

/// <summary>`depin lake rebuild` and `depin lake query`: the lake from the analyst's and the operator's side.</summary>
public static class LakeCommand
{
    public static Command Create()
    {
        var lake = new Command("lake", "The Parquet lake: rebuild it from the event store, or query it with DuckDB.");
        lake.Subcommands.Add(Rebuild());
        lake.Subcommands.Add(Query());
        return lake;
    }

    private static Command Rebuild()
    {
        var arguments = new StackArguments();
        var replace = new Option<bool>("--replace") { Description = "Make the rebuilt lake the live one when it matches (stop depin up / depin projections first)." };
        var command = new Command("rebuild", "Recreate the lake from the event store in a folder next to the live one (lake-rebuild) and compare it, partition by partition, with the live lake.") { replace };
        arguments.AddTo(command);
        command.SetAction(async (result, cancellation) =>
        {
            var configuration = PipelineConfiguration.Build(arguments.Values(result));
            if (LakeOptionsFrom(configuration) is not { } options) return 2;
            var replacing = result.GetValue(replace);
            // Replacing takes the live lake over: refused at once, before any rebuilding, while anything else could write it.
            using var folder = replacing
                ? DataFolderLock.Acquire(PipelineConfiguration.DataDirectory(configuration), _ => "stop it before replacing the lake, or leave out --replace to rebuild and compare only")
                : null;
            await using var lakeHost = await LakeHost.StartAsync(configuration, cancellation, folder);
            if (replacing) await LakeRebuild.EnsureNoProjectorAsync(lakeHost.Store, cancellation);
            var (partitions, through, directory) = await RebuildWithProgressAsync(lakeHost, options, cancellation);
            var table = new Table().AddColumn("Dataset").AddColumn("Date").AddColumn(new TableColumn("Live rows").RightAligned()).AddColumn(new TableColumn("Rebuilt rows").RightAligned()).AddColumn("Content");
            foreach (var p in partitions)
                table.AddRow(new Text(p.Dataset), new Text($"{p.Date:yyyy-MM-dd}"), new Text($"{p.LiveRows:N0}"), new Text($"{p.RebuiltRows:N0}"), p.Equal ? new Markup("[green]same[/]") : new Markup("[red]differs[/]"));
            AnsiConsole.Write(table);
            var same = partitions.All(p => p.Equal);
            AnsiConsole.MarkupLineInterpolated($"Events through sequence {through:N0}; rebuilt lake in [blue]{directory}[/].");
            AnsiConsole.MarkupLine(same ? "[green]Every partition has the same rows.[/]" : "[red]Partitions differ.[/]");
            if (!replacing) return same ? 0 : 1;
            if (!same) return 1;
            var previous = await LakeRebuild.ReplaceAsync(lakeHost.Store, lakeHost.DataDirectory, options, through, cancellation);
            AnsiConsole.MarkupLineInterpolated($"The rebuilt lake is now the live one; the previous one is in [blue]{previous}[/].");
            return 0;
        });
        return command;
    }

    /// <summary>The rebuild, with a bar that follows the event sequence on a terminal, or a line every few seconds when piped.</summary>
    private static async Task<(IReadOnlyList<PartitionComparison> Partitions, long Through, string Directory)> RebuildWithProgressAsync(LakeHost lakeHost, LakeOptions options, CancellationToken cancellation)
    {
        if (Console.IsOutputRedirected)
        {
            var sinceLastLine = System.Diagnostics.Stopwatch.StartNew();
            return await LakeRebuild.RunAsync(lakeHost.Store, lakeHost.DataDirectory, options, NullLogger.Instance, new Progress<RebuildProgress>(p =>
            {
                if (sinceLastLine.Elapsed < TimeSpan.FromSeconds(5)) return;
                sinceLastLine.Restart();
                Console.WriteLine($"Rebuilding: through event {p.Through:N0} of {p.Target:N0}");
            }), cancellation);
        }
        return await AnsiConsole.Progress().StartAsync(async progress =>
        {
            var task = progress.AddTask("Rebuilding from the event store", maxValue: 1);
            var rebuilt = await LakeRebuild.RunAsync(lakeHost.Store, lakeHost.DataDirectory, options, NullLogger.Instance, new Progress<RebuildProgress>(p =>
            {
                task.MaxValue = Math.Max(1, p.Target);
                task.Value = p.Through;
            }), cancellation);
            task.Value = task.MaxValue;
            return rebuilt;
        });
    }

    private static Command Query()
    {
        var arguments = new StackArguments();
        var sql = new Argument<string>("sql") { Description = "SQL over vehicle_signals, weather_observations, reading_rejections, weather_hourly, vehicle_daily, device_quality." };
        var format = new Option<string>("--format") { Description = "table (fitted to the terminal), csv or json.", DefaultValueFactory = _ => "table" };
        format.AcceptOnlyFromAmong("table", "csv", "json");
        var limit = new Option<int>("--limit") { Description = "Print at most this many rows; a note on stderr says when more matched.", DefaultValueFactory = _ => 1_000 };
        limit.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() < 1) r.AddError("--limit takes a whole number of at least 1.");
        });
        var command = new Command("query", "Run a SQL query over the lake's DuckDB views and print the result.") { sql, format, limit };
        arguments.AddTo(command);
        command.SetAction(async (result, cancellation) =>
        {
            var configuration = PipelineConfiguration.Build(arguments.Values(result));
            if (LakeOptionsFrom(configuration) is not { } options) return 2;
            QueryResult rows;
            await using (var lakeHost = await LakeHost.StartAsync(configuration, cancellation))
            {
                var manifest = lakeHost.Store.Manifest(LakeProjector.LiveLake);
                await manifest.EnsureSchemaAsync(cancellation);
                using var connection = LakeCatalog.Open(options.ResolveDirectory(lakeHost.DataDirectory), await manifest.FilesAsync(cancellation), options.EpochLength);
                using var query = connection.CreateCommand();
                query.CommandText = result.GetValue(sql)!;
                using var reader = query.ExecuteReader();
                rows = QueryResult.Read(reader, result.GetValue(limit));
            }
            switch (result.GetValue(format))
            {
                case "csv":
                    QueryResults.WriteCsv(rows, Console.Out);
                    break;
                case "json":
                    using (var output = Console.OpenStandardOutput()) QueryResults.WriteJson(rows, output);
                    break;
                default:
                    int? width = Console.IsOutputRedirected ? null : Math.Max(40, Console.WindowWidth);
                    foreach (var line in QueryResults.Table(rows, width)) Console.WriteLine(line);
                    Console.WriteLine(rows.Rows.Count == 1 ? "(1 row)" : $"({rows.Rows.Count:N0} rows)");
                    break;
            }
            if (rows.Truncated) Console.Error.WriteLine($"note: only the first {rows.Rows.Count:N0} rows are shown; more matched. Raise --limit, or narrow the query.");
            return 0;
        });
        return command;
    }

    /// <summary>The Lake section, checked as the projector checks it at start; null (errors printed) when invalid.</summary>
    private static LakeOptions? LakeOptionsFrom(IConfiguration configuration)
    {
        var options = configuration.GetSection(LakeOptions.Section).Get<LakeOptions>() ?? new();
        var errors = options.Errors();
        foreach (var error in errors) Console.Error.WriteLine($"error: {error}");
        return errors.Count == 0 ? options : null;
    }

    /// <summary>The event store the lake comes from, composed like any host, without a broker (the lake needs none).</summary>
    internal sealed class LakeHost(DevServers servers, IHost host) : IAsyncDisposable
    {
        public LakeStore Store { get; } = host.Services.GetRequiredService<LakeStore>();

        public Marten.IDocumentStore Events => host.Services.GetRequiredService<Marten.IDocumentStore>();

        public string DataDirectory => servers.DataDirectory;

        public static async Task<LakeHost> StartAsync(IConfiguration configuration, CancellationToken cancellation, LockFile? folder = null)
        {
            var options = PipelineConfiguration.DevServers(configuration);
            options.WithKafka = false;
            options.AdoptRunningPostgres = folder is not null && DataFolderLock.LeftPostgresRunning(folder);
            var servers = await DevServers.StartAsync(options, NullLogger.Instance, cancellation);
            if (folder is not null) DataFolderLock.NoteStarted(folder, servers);
            var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
            builder.Configuration.AddConfiguration(PipelineConfiguration.With(configuration, servers));
            builder.Services.AddEventStore(builder.Configuration).AddLakeStore();
            var host = builder.Build();
            try
            {
                // Starting applies the store's schema, as in every other process.
                await host.StartAsync(cancellation);
            }
            catch
            {
                host.Dispose();
                await servers.DisposeAsync();
                throw;
            }
            return new LakeHost(servers, host);
        }

        public async ValueTask DisposeAsync()
        {
            await host.StopAsync();
            host.Dispose();
            await servers.DisposeAsync();
        }
    }
}
