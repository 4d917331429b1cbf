using System.CommandLine;
using Microsoft.Extensions.Logging.Abstractions;
using Pipeline.Cli.Hosting;
using Pipeline.Infra.Stack;
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
            await using var stack = await StartAsync(configuration, cancellation);
            var (partitions, through, directory) = await AnsiConsole.Progress().StartAsync(async progress =>
            {
                var task = progress.AddTask("Rebuilding from the event store");
                return await LakeRebuild.RunAsync(stack, options, NullLogger.Instance, new Progress<int>(_ => task.Value = Math.Min(99, task.Value + 1)), cancellation);
            });
            var table = new Table().AddColumn("Dataset").AddColumn("Date").AddColumn(new TableColumn("Live rows").RightAligned()).AddColumn(new TableColumn("Rebuilt rows").RightAligned()).AddColumn("Content");
            foreach (var p in partitions)
                table.AddRow(p.Dataset, $"{p.Date:yyyy-MM-dd}", $"{p.LiveRows:N0}", $"{p.RebuiltRows:N0}", p.Equal ? "[green]same[/]" : "[red]differs[/]");
            AnsiConsole.Write(table);
            var same = partitions.All(p => p.Equal);
            AnsiConsole.MarkupLineInterpolated($"Events through sequence {through:N0}; rebuilt lake in [blue]{directory}[/]: {(same ? "[green]every partition has the same rows[/]" : "[red]partitions differ[/]")}.");
            if (!result.GetValue(replace)) return same ? 0 : 1;
            if (!same) return 1;
            var previous = await LakeRebuild.ReplaceAsync(stack, options, through, cancellation);
            AnsiConsole.MarkupLineInterpolated($"The rebuilt lake is now the live one; the previous one is in [blue]{previous}[/].");
            return 0;
        });
        return command;
    }

    private static Command Query()
    {
        var arguments = new StackArguments();
        var sql = new Argument<string>("sql") { Description = "SQL over vehicle_signals, weather_observations, reading_rejections, weather_hourly, vehicle_daily, device_quality." };
        var command = new Command("query", "Run a SQL query over the lake's DuckDB views and print the result.") { sql };
        arguments.AddTo(command);
        command.SetAction(async (result, cancellation) =>
        {
            var configuration = PipelineConfiguration.Build(arguments.Values(result));
            if (LakeOptionsFrom(configuration) is not { } options) return 2;
            await using var stack = await StartAsync(configuration, cancellation);
            var manifest = new LakeManifest(stack, LakeProjector.LiveLake);
            await manifest.EnsureSchemaAsync(cancellation);
            using var connection = LakeCatalog.Open(options.ResolveDirectory(stack.DataDirectory), await manifest.FilesAsync(cancellation), options.EpochLength);
            using var command = connection.CreateCommand();
            command.CommandText = result.GetValue(sql)!;
            try
            {
                using var reader = command.ExecuteReader();
                var table = new Table();
                for (var i = 0; i < reader.FieldCount; i++) table.AddColumn(reader.GetName(i));
                var rows = 0;
                while (reader.Read() && rows++ < 1_000)
                    table.AddRow(Enumerable.Range(0, reader.FieldCount).Select(i => Markup.Escape(Format(reader.IsDBNull(i) ? null : reader.GetValue(i)))).ToArray());
                AnsiConsole.Write(table);
                return 0;
            }
            catch (DuckDB.NET.Data.DuckDBException e)
            {
                AnsiConsole.MarkupLineInterpolated($"[red]{e.Message}[/]");
                return 1;
            }
        });
        return command;
    }

    private static string Format(object? value) => value switch
    {
        null => "",
        System.Collections.IDictionary map => string.Join(", ", map.Keys.Cast<object>().Select(k => $"{k}={map[k]}")),
        DateTime time => time.ToString("yyyy-MM-dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture),
        _ => Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? "",
    };

    /// <summary>The Lake section, checked as the projector checks it at start; null (errors printed) when invalid.</summary>
    private static LakeOptions? LakeOptionsFrom(IConfiguration configuration)
    {
        var options = configuration.GetSection(LakeOptions.Section).Get<LakeOptions>() ?? new();
        var errors = options.Errors();
        foreach (var error in errors) AnsiConsole.MarkupLineInterpolated($"[red]{error}[/]");
        return errors.Count == 0 ? options : null;
    }

    private static Task<DevStack> StartAsync(IConfiguration configuration, CancellationToken cancellation)
    {
        var options = PipelineConfiguration.StackOptions(configuration);
        options.JoinPublishedBroker = true;
        return DevStack.StartAsync(options, NullLogger.Instance, cancellation);
    }
}
