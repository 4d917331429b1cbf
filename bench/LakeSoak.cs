using System.Diagnostics;
using System.Globalization;
using System.Text;
using JasperFx.Events;
using Marten;
using Pipeline.Cli.Chaos;
using Pipeline.Cli.Hosting;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Core.Events;
using Pipeline.Registry;
using Pipeline.Tests.Support;
using Spectre.Console;
using V = Pipeline.Core.Signals.SignalCatalog.Vehicle;

namespace Pipeline.Bench;

/// <summary>
/// The lake projector alone, as its own `depin projections` process, under a steady stream of reading events appended to
/// a scratch PostgreSQL by this process; its RSS every second (compaction every 30 s raises it for a few seconds, which
/// samples 10 s apart met at the same point of the cycle every time), its PSS, anonymous memory and how far behind the
/// lake is every 10 s; at the end the floor between compactions apart from their peaks.
/// </summary>
public static class LakeSoak
{
    public static string Usage => "./depin bench lake-soak [minutes, 6] [--rate readings/s, 2500] [--cli <depin.dll>, this build's]";

    private const int Devices = 500;
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan Sample = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan RssSample = TimeSpan.FromSeconds(1);
    /// <summary>The band is the RSS after the first minutes' rise (native code paged in, first compactions).</summary>
    private static readonly TimeSpan BandFrom = TimeSpan.FromMinutes(2);
    /// <summary>The projector's default compaction interval: each window of it holds one compaction's peak and a floor.</summary>
    private static readonly TimeSpan Cycle = TimeSpan.FromSeconds(30);

    public static async Task<int> RunAsync(string[] args, CancellationToken stop)
    {
        var minutes = args.Length > 0 && double.TryParse(args[0], CultureInfo.InvariantCulture, out var m) ? m : 6;
        var rate = Option(args, "--rate") is { } r ? int.Parse(r, CultureInfo.InvariantCulture) : 2_500;
        // Another build's CLI (an earlier commit's, copied aside) measures the projector before a change in the same way.
        var cli = Option(args, "--cli") ?? Path.Combine(RepositoryTools.Root, "cli", "bin", new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name, "net10.0", "depin.dll");
        await using var scratch = await Scratch.StartAsync();
        var devices = await RegisterAsync(scratch);

        var log = Path.Combine(scratch.Folder, "projections.log");
        var start = new ProcessStartInfo("/bin/sh", ["-c", "exec dotnet \"$@\" > \"$LOG\" 2>&1", "sh", cli, "projections", "--data", scratch.Folder,
            "--kafka", scratch.KafkaBootstrapServers, "--postgres", scratch.Servers.PostgresConnectionString!, "--status-port", $"{Scratch.FreePort()}"]);
        start.Environment["LOG"] = log;
        start.Environment["PIPELINE_Logging__LogLevel__Default"] = "Warning";
        start.Environment[ParentWatch.Variable] = $"{Environment.ProcessId}";
        using var projector = Process.Start(start) ?? throw new InvalidOperationException("The projector did not start.");
        // A stop signal stops the projector too (it would stop by itself once this process is gone, a moment later).
        using var stopProjector = stop.Register(() => Signals.Send(projector.Id, Signals.Term));
        AnsiConsole.MarkupLineInterpolated($"Projector pid {projector.Id} (log {log}); appending {rate:N0} readings/s for {minutes} min over {Devices} vehicles");

        var manifest = scratch.Services.GetRequiredService<Pipeline.Projections.Lake.LakeStore>().Manifest(Pipeline.Projections.Lake.LakeProjector.LiveLake);
        var table = new Table().AddColumn("Minute").AddColumn(new TableColumn("Appended").RightAligned()).AddColumn(new TableColumn("Lake behind (events)").RightAligned())
            .AddColumn(new TableColumn("Projector RSS").RightAligned()).AddColumn(new TableColumn("RSS peak in 10 s").RightAligned()).AddColumn(new TableColumn("PSS").RightAligned())
            .AddColumn(new TableColumn("Anonymous").RightAligned());
        var (clock, appended, nextSample, nextRss, seq) = (Stopwatch.StartNew(), 0L, Sample, Sample, 0L);
        var rss = new List<(TimeSpan At, long Bytes)>();
        var intervalPeak = 0L;
        // The projector's CPU from its first sample on (its start-up and first rounds are not a reading's cost).
        (TimeSpan User, TimeSpan System, long Faults, long Appended)? cpuFrom = null;
        var perTick = Math.Max(1, rate / 10);
        while (clock.Elapsed < TimeSpan.FromMinutes(minutes))
        {
            if (projector.HasExited) throw new InvalidOperationException($"The projector exited ({projector.ExitCode}); see {log}.");
            var tickStart = clock.Elapsed;
            await using (var session = scratch.Store.LightweightSession())
            {
                var now = DateTimeOffset.UtcNow;
                for (var i = 0; i < perTick; i++, seq++)
                {
                    var device = devices[(int)(seq % Devices)];
                    var n = seq / Devices;
                    session.Events.Append(device, new ReadingAccepted($"0x{seq:x12}", n + 1, now, now, new Dictionary<string, double>
                    {
                        [V.Speed] = 30 + (n % 90), [V.Latitude] = 52.3 + n * 1e-5, [V.Longitude] = 4.9, [V.Odometer] = 10_000 + n * 0.07,
                        [V.EngineSpeed] = 1500 + (n % 1500), [V.CoolantTemperature] = 88, [V.FuelLevel] = 80 - n * 1e-4,
                    }, 0, seq));
                }
                await session.SaveChangesAsync();
            }
            appended += perTick;
            if (clock.Elapsed >= nextRss)
            {
                nextRss += RssSample;
                var bytes = Memory(projector.Id).Rss;
                rss.Add((clock.Elapsed, bytes));
                intervalPeak = Math.Max(intervalPeak, bytes);
            }
            if (clock.Elapsed >= nextSample)
            {
                nextSample += Sample;
                var (processRss, processPss, processAnonymous) = Memory(projector.Id);
                var peak = Math.Max(intervalPeak, processRss);
                intervalPeak = 0;
                projector.Refresh();
                cpuFrom ??= (projector.UserProcessorTime, projector.PrivilegedProcessorTime, MinorFaults(projector.Id), appended);
                var behind = await BehindAsync(scratch, await manifest.CheckpointAsync(CancellationToken.None));
                table.AddRow($"{clock.Elapsed.TotalMinutes:F1}", $"{appended:N0}", $"{behind:N0}", Mb(processRss), Mb(peak), Mb(processPss), Mb(processAnonymous));
                AnsiConsole.MarkupLineInterpolated($"{clock.Elapsed.TotalMinutes,5:F1} min  appended {appended,10:N0}  lake behind {behind,8:N0}  RSS {Mb(processRss),8}  peak {Mb(peak),8}  PSS {Mb(processPss),8}  anonymous {Mb(processAnonymous),8}");
            }
            var rest = Tick - (clock.Elapsed - tickStart);
            if (rest > TimeSpan.Zero) await Task.Delay(rest, stop);
            stop.ThrowIfCancellationRequested();
        }
        AnsiConsole.Write(table);
        projector.Refresh();
        var (user, system, faults, from) = cpuFrom!.Value;
        var readings = appended - from;
        // Page faults show memory that an allocator hands back to the kernel and takes again: system time, not work.
        AnsiConsole.MarkupLineInterpolated($"Projector CPU per reading appended after the first sample: {(projector.UserProcessorTime - user + projector.PrivilegedProcessorTime - system).TotalMicroseconds / readings:F1} µs (user {(projector.UserProcessorTime - user).TotalMicroseconds / readings:F1}, system {(projector.PrivilegedProcessorTime - system).TotalMicroseconds / readings:F1}); minor page faults per reading {(MinorFaults(projector.Id) - faults) / (double)readings:F1}");
        var band = rss.Where(s => s.At >= BandFrom).Select(s => s.Bytes).DefaultIfEmpty().ToList();
        AnsiConsole.MarkupLineInterpolated($"Appended {appended / clock.Elapsed.TotalSeconds:N0} readings/s; projector RSS (every second) start / peak / end {Mb(rss[0].Bytes)} / {Mb(rss.Max(s => s.Bytes))} / {Mb(rss[^1].Bytes)}, from minute {BandFrom.TotalMinutes:F0} {Mb(band.Min())}–{Mb(band.Max())}; load average {string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ')[..3])}");
        // Growth shows in the floor; compaction raises RSS for a few seconds of each cycle, the same each time if bounded.
        var cycles = rss.Where(s => s.At >= BandFrom).GroupBy(s => (int)(s.At / Cycle)).Where(c => c.Count() >= Cycle.TotalSeconds / 2)
            .Select(c => (Floor: c.Min(s => s.Bytes), Peak: c.Max(s => s.Bytes))).ToList();
        if (cycles.Count > 0)
            AnsiConsole.MarkupLineInterpolated($"From minute {BandFrom.TotalMinutes:F0}, per {Cycle.TotalSeconds:F0} s: floor {Mb(cycles.Min(c => c.Floor))}–{Mb(cycles.Max(c => c.Floor))} (first {Mb(cycles[0].Floor)}, last {Mb(cycles[^1].Floor)}), peak {Mb(cycles.Min(c => c.Peak))}–{Mb(cycles.Max(c => c.Peak))} (first {Mb(cycles[0].Peak)}, last {Mb(cycles[^1].Peak)})");
        Signals.Send(projector.Id, Signals.Term);
        await projector.WaitForExitAsync();
        return 0;
    }

    private static string? Option(string[] args, string name) => args.SkipWhile(a => a != name).Skip(1).FirstOrDefault();

    /// <summary>Events in the store past the lake's checkpoint.</summary>
    private static async Task<long> BehindAsync(Scratch scratch, long checkpoint)
    {
        await using var connection = await scratch.Services.GetRequiredService<Npgsql.NpgsqlDataSource>().OpenConnectionAsync();
        await using var command = new Npgsql.NpgsqlCommand($"SELECT coalesce(max(seq_id), 0) FROM {scratch.Services.GetRequiredService<Pipeline.Projections.Lake.LakeStore>().Schema}.mt_events", connection);
        return (long)(await command.ExecuteScalarAsync())! - checkpoint;
    }

    private static async Task<string[]> RegisterAsync(Scratch scratch)
    {
        var start = DateTimeOffset.UtcNow.AddDays(-1);
        var owner = EthKey.FromSeed("lake-soak-owner"u8).Address.ToLowerHex();
        var addresses = Enumerable.Range(0, Devices).Select(d => EthKey.FromSeed(Encoding.UTF8.GetBytes($"lake-soak-{d}")).Address.ToLowerHex()).ToArray();
        await scratch.Store.BulkInsertDocumentsAsync(addresses.Select(a => new Device { Id = a, Owner = owner, Kind = DeviceKind.Vehicle, RegisteredAt = start, UpdatedAt = start }));
        await scratch.Store.BulkInsertEventsAsync(addresses.Select(a => StreamAction.Start(((DocumentStore)scratch.Store).Events, a,
            [new DeviceRegistered(a, owner, DeviceKind.Vehicle, new Dictionary<string, string>(), "{}", "0x", "0x", start)])).ToList());
        return addresses;
    }

    private static (long Rss, long Pss, long Anonymous) Memory(int pid)
    {
        var fields = File.ReadLines($"/proc/{pid}/smaps_rollup").Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).Where(f => f is [_, _, "kB"])
            .ToDictionary(f => f[0], f => long.Parse(f[1], CultureInfo.InvariantCulture) * 1024);
        return (fields.GetValueOrDefault("Rss:"), fields.GetValueOrDefault("Pss:"), fields.GetValueOrDefault("Anonymous:"));
    }

    /// <summary>The process's minor page faults so far (/proc/&lt;pid&gt;/stat, field 10).</summary>
    private static long MinorFaults(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        return long.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[7], CultureInfo.InvariantCulture);
    }

    private static string Mb(long bytes) => $"{bytes / 1_048_576.0:N0} MB";
}
