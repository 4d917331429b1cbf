using System.Collections.Concurrent;
using System.Diagnostics;
using Marten;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Registry;
using Spectre.Console;

namespace Pipeline.Bench;

/// <summary>
/// The processors' device directory holding 1,000,000 registered devices: memory per device, load time and lookup time
/// (hit and miss), against a baseline measured in the same run — a plain Dictionary of the same address strings — and
/// against the layout the directory had before issue 10 (whole Device documents keyed by address string).
/// </summary>
public static class DirectoryBench
{
    private const int Devices = 1_000_000;
    private const int Batch = 2_000;

    /// <summary>One layout's figures: load time, bytes per device, nanoseconds per lookup.</summary>
    private sealed record Figures(TimeSpan? Load, double BytesPerDevice, double HitNs, double MissNs);

    public static async Task RunAsync(TimeSpan duration)
    {
        await using var scratch = await Scratch.StartAsync();
        var stack = scratch;
        var random = new Random(10);
        var registered = Enumerable.Range(0, Devices).Select(_ => RandomAddress(random)).ToArray();
        var strangers = Enumerable.Range(0, Batch).Select(_ => RandomAddress(random)).ToArray();
        await AnsiConsole.Status().StartAsync($"Storing {Devices:N0} device documents (bulk insert)…", _ => StoreAsync(stack, registered));

        AnsiConsole.MarkupLine("Baseline: a plain Dictionary of the address strings…");
        var plain = Baseline(duration, registered, strangers);
        AnsiConsole.MarkupLine("Before: whole Device documents by address string, as the directory held them…");
        var before = await DocumentsAsync(duration, stack, registered, strangers);
        AnsiConsole.MarkupLine("After: the DeviceDirectory, listening…");
        var after = await DirectoryAsync(duration, stack, registered, strangers);

        var table = new Table().AddColumn($"{Devices:N0} devices")
            .AddColumn(new TableColumn("Load").RightAligned()).AddColumn(new TableColumn("Memory / device").RightAligned())
            .AddColumn(new TableColumn("Lookup, hit").RightAligned()).AddColumn(new TableColumn("Lookup, miss").RightAligned());
        table.AddRow("Baseline: Dictionary<string, DeviceKind> of the address strings", "", $"{plain.BytesPerDevice:N0} B", Ns(plain.HitNs), Ns(plain.MissNs));
        foreach (var (name, figures) in new[]
        {
            ("Before: whole Device documents (Marten query) in a ConcurrentDictionary by address string", before),
            ($"After: DeviceDirectory (kind by 20-byte address; batches of {Batch:N0}; a remembered miss costs one NOTIFY round trip per batch)", after),
        })
        {
            table.AddRow(name, $"{figures.Load!.Value.TotalSeconds:N1} s", $"{figures.BytesPerDevice:N0} B ({figures.BytesPerDevice / plain.BytesPerDevice:N2}×)",
                $"{Ns(figures.HitNs)} ({figures.HitNs / plain.HitNs:N2}×)", $"{Ns(figures.MissNs)} ({figures.MissNs / plain.MissNs:N1}×)");
        }
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine($"After ÷ before: memory [bold]{after.BytesPerDevice / before.BytesPerDevice:P0}[/], load time [bold]{after.Load / before.Load:P0}[/], hit [bold]{after.HitNs / before.HitNs:P0}[/].");
    }

    private static Figures Baseline(TimeSpan duration, EthAddress[] registered, EthAddress[] strangers)
    {
        var texts = registered.Select(a => a.ToLowerHex()).ToArray();
        var (plain, bytes) = Allocated(() => texts.ToDictionary(t => new string(t), _ => DeviceKind.Vehicle, StringComparer.Ordinal));
        var strangerTexts = strangers.Select(a => a.ToLowerHex()).ToArray();
        return new Figures(null, bytes / (double)Devices, Lookups(duration, texts, plain.ContainsKey), Lookups(duration, strangerTexts, plain.ContainsKey));
    }

    private static async Task<Figures> DocumentsAsync(TimeSpan duration, Scratch stack, EthAddress[] registered, EthAddress[] strangers)
    {
        var clock = Stopwatch.StartNew();
        var (documents, bytes) = await AllocatedAsync(async () =>
        {
            await using var session = stack.Store.QuerySession();
            var all = await session.Query<Device>().ToListAsync();
            return new ConcurrentDictionary<string, Device>(all.Select(d => KeyValuePair.Create(d.Id, d)), StringComparer.Ordinal);
        });
        var load = clock.Elapsed;
        var texts = registered.Select(a => a.ToLowerHex()).ToArray();
        var strangerTexts = strangers.Select(a => a.ToLowerHex()).ToArray();
        return new Figures(load, bytes / (double)Devices, Lookups(duration, texts, documents.ContainsKey), Lookups(duration, strangerTexts, documents.ContainsKey));
    }

    private static async Task<Figures> DirectoryAsync(TimeSpan duration, Scratch stack, EthAddress[] registered, EthAddress[] strangers)
    {
        using var directory = stack.Create<DeviceDirectory>();
        var clock = Stopwatch.StartNew();
        var (_, bytes) = await AllocatedAsync(async () =>
        {
            await directory.StartAsync(CancellationToken.None);
            while (!directory.Listening) await Task.Delay(10);
            return directory;
        });
        var load = clock.Elapsed;
        if (directory.Count != Devices) throw new InvalidOperationException($"The directory holds {directory.Count:N0} devices, not {Devices:N0}.");
        var batches = registered.Chunk(Batch).ToArray();
        if ((await directory.LookupAsync(batches[0], CancellationToken.None)).Any(kind => kind is null)) throw new InvalidOperationException("A registered device was not found.");
        if ((await directory.LookupAsync(strangers, CancellationToken.None)).Any(kind => kind is not null) || directory.RememberedMisses != Batch)
            throw new InvalidOperationException("The strangers were not remembered as misses.");
        var hit = await BatchLookupsAsync(duration, batches, directory);
        var miss = await BatchLookupsAsync(duration, [strangers], directory);
        await directory.StopAsync(CancellationToken.None);
        return new Figures(load, bytes / (double)Devices, hit, miss);
    }

    private static EthAddress RandomAddress(Random random)
    {
        Span<byte> bytes = stackalloc byte[EthAddress.Size];
        random.NextBytes(bytes);
        return new EthAddress(bytes);
    }

    private static async Task StoreAsync(Scratch stack, EthAddress[] addresses)
    {
        var owner = EthKey.FromSeed("directory-bench-owner"u8).Address.ToLowerHex();
        var now = DateTimeOffset.UtcNow;
        foreach (var chunk in addresses.Chunk(100_000))
        {
            await stack.Store.BulkInsertDocumentsAsync(chunk.Select(a => new Device
            {
                Id = a.ToLowerHex(), Owner = owner, Kind = DeviceKind.Vehicle, RegisteredAt = now, UpdatedAt = now,
                Metadata = new() { ["make"] = "Volvo", ["model"] = "V40 D2", ["year"] = "2015", ["firmware"] = "2.1.0" },
            }));
        }
    }

    /// <summary>Bytes still reachable after building: a full collection before and after.</summary>
    private static (T Value, long Bytes) Allocated<T>(Func<T> build)
    {
        var before = GC.GetTotalMemory(forceFullCollection: true);
        var value = build();
        return (value, GC.GetTotalMemory(forceFullCollection: true) - before);
    }

    private static async Task<(T Value, long Bytes)> AllocatedAsync<T>(Func<Task<T>> build)
    {
        // A pool thread can keep the last work item it ran (and what that reached) in a stack slot until it runs
        // another: give every pool thread something else to do, so an earlier layout's garbage is really gone.
        await Task.WhenAll(Enumerable.Range(0, 4 * Environment.ProcessorCount * 8).Select(_ => Task.Run(() => Thread.SpinWait(1000))));
        var before = GC.GetTotalMemory(forceFullCollection: true);
        var value = await build();
        return (value, GC.GetTotalMemory(forceFullCollection: true) - before);
    }

    /// <summary>Nanoseconds per lookup, cycling through the keys.</summary>
    private static double Lookups(TimeSpan duration, string[] keys, Func<string, bool> lookup)
    {
        var index = 0;
        var found = 0L;
        var throughput = Measure.For("lookups", duration, () =>
        {
            for (var i = 0; i < Batch; i++)
            {
                if (lookup(keys[index])) found++;
                index = (index + 1) % keys.Length;
            }
            return Batch;
        });
        GC.KeepAlive(found);
        return 1e9 / throughput.PerSecond;
    }

    /// <summary>Nanoseconds per address, looking up whole batches as the processors do.</summary>
    private static async Task<double> BatchLookupsAsync(TimeSpan duration, EthAddress[][] batches, DeviceDirectory directory)
    {
        var index = 0;
        var clock = Stopwatch.StartNew();
        long operations = 0;
        while (clock.Elapsed < duration)
        {
            await directory.LookupAsync(batches[index], CancellationToken.None);
            operations += batches[index].Length;
            index = (index + 1) % batches.Length;
        }
        return clock.Elapsed.TotalNanoseconds / operations;
    }

    private static string Ns(double nanoseconds) => $"{nanoseconds:N0} ns";
}
