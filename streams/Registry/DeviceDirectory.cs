using System.Collections.Concurrent;
using Marten;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Pipeline.Infra.Stack;

namespace Pipeline.Streams.Registry;

/// <summary>
/// The validators' view of the registry: an in-memory map of devices, loaded at start and kept current by polling
/// documents changed since the last look (with an overlap, since commits land out of order). A device it does not know
/// is looked up in the store at once, so a fresh registration counts immediately; a miss is remembered briefly so an
/// unregistered sender cannot make every reading cost a query, and forgotten on the next poll after that.
/// </summary>
public sealed class DeviceDirectory(DevStack stack, TimeProvider clock, ILogger<DeviceDirectory> logger) : BackgroundService
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan Overlap = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan MissMemory = TimeSpan.FromSeconds(2);

    private readonly ConcurrentDictionary<string, Device> _devices = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, DateTimeOffset> _misses = new(StringComparer.Ordinal);
    private DateTimeOffset _watermark = DateTimeOffset.MinValue;

    /// <summary>The registered devices among <paramref name="addresses"/> (lower-case hex); unknown ones are absent.</summary>
    public async ValueTask<IReadOnlyDictionary<string, Device>> LookupAsync(IEnumerable<string> addresses, CancellationToken cancellation)
    {
        var found = new Dictionary<string, Device>(StringComparer.Ordinal);
        List<string>? missing = null;
        var now = clock.GetUtcNow();
        foreach (var address in addresses)
        {
            if (found.ContainsKey(address)) continue;
            if (_devices.TryGetValue(address, out var device)) found[address] = device;
            else if (!_misses.TryGetValue(address, out var until) || until < now) (missing ??= []).Add(address);
        }
        if (missing is null) return found;

        await using var session = stack.Store.QuerySession();
        var loaded = await session.LoadManyAsync<Device>(cancellation, missing.Distinct());
        foreach (var device in loaded)
        {
            _devices[device.Id] = device;
            found[device.Id] = device;
        }
        foreach (var address in missing.Where(a => !found.ContainsKey(a))) _misses[address] = now + MissMemory;
        return found;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            ForgetExpiredMisses();
            try
            {
                await RefreshAsync(stoppingToken);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                logger.LogWarning(e, "Refreshing the device directory failed; retrying");
            }
            await Task.Delay(PollInterval, clock, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    /// <summary>Every validly signed address that is not registered leaves a miss; without this they would pile up for good.</summary>
    private void ForgetExpiredMisses()
    {
        var now = clock.GetUtcNow();
        foreach (var miss in _misses)
        {
            // Only this expired entry: one remembered again meanwhile has another value and stays.
            if (miss.Value < now) _misses.TryRemove(miss);
        }
    }

    /// <summary>Loads every device changed since the last refresh (all of them the first time).</summary>
    public async Task RefreshAsync(CancellationToken cancellation)
    {
        var since = _watermark == DateTimeOffset.MinValue ? DateTimeOffset.MinValue : _watermark - Overlap;
        await using var session = stack.Store.QuerySession();
        var changed = await session.Query<Device>().Where(d => d.UpdatedAt >= since).ToListAsync(cancellation);
        foreach (var device in changed)
        {
            _devices[device.Id] = device;
            _misses.TryRemove(device.Id, out _);
            if (device.UpdatedAt > _watermark) _watermark = device.UpdatedAt;
        }
        if (_watermark == DateTimeOffset.MinValue) _watermark = clock.GetUtcNow();
    }
}
