using System.Collections.Concurrent;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Marten;
using Pipeline.Infra.Postgres;

namespace Pipeline.Registry;

/// <summary>
/// The validators' view of the registry: the kind of every registered device, in memory, keyed by its 20-byte address —
/// all a validator needs (the documents with owners and metadata stay in the store). A registration or transfer
/// NOTIFYs <see cref="Channel"/> in its own transaction; the directory LISTENs on a connection of its own, loads each
/// device notified, and loads everything again whenever it (re)connects, since notifications sent while it was away are
/// lost. A device it does not hold is looked up in the store; the miss is remembered so an unregistered sender costs
/// no query per batch. Before a remembered miss refuses anything, the directory sends a NOTIFY of its own on the channel
/// and waits for it to come back: PostgreSQL delivers notifications in commit order, so by then every registration
/// committed earlier has dropped its miss. A device that registers and then sends is never refused.
/// </summary>
public sealed class DeviceDirectory(IDocumentStore store, NpgsqlDataSource dataSource, PostgresSessions sessions, TimeProvider clock, ILogger<DeviceDirectory> logger) : BackgroundService
{
    /// <summary>A remembered miss is forgotten after this, so misses cannot pile up.</summary>
    private static readonly TimeSpan MissMemory = TimeSpan.FromMinutes(1);
    private const int MaxMisses = 100_000;
    private static readonly TimeSpan SyncTimeout = TimeSpan.FromSeconds(5);
    private static readonly TimeSpan ReconnectPause = TimeSpan.FromSeconds(1);
    private const string SyncPrefix = "sync:";

    private readonly string _schema = store.Schema();
    private readonly string _instance = Guid.NewGuid().ToString("N");
    private readonly Lock _gate = new();
    private Dictionary<EthAddress, DeviceKind> _kinds = [];
    private readonly Dictionary<EthAddress, DateTimeOffset> _misses = [];
    private readonly ConcurrentDictionary<long, TaskCompletionSource<bool>> _syncs = new();
    private readonly HashSet<EthAddress> _notified = [];
    private long _notifications;
    private long _nextSync;
    private volatile bool _listening;

    /// <summary>The channel registrations and transfers of an event store schema notify, with the device address as payload.</summary>
    public static string Channel(string schema) => $"depin_devices_{schema}";

    /// <summary>Registered devices held in memory.</summary>
    public int Count
    {
        get
        {
            lock (_gate) return _kinds.Count;
        }
    }

    /// <summary>Unregistered addresses remembered as such.</summary>
    public int RememberedMisses
    {
        get
        {
            lock (_gate) return _misses.Count;
        }
    }

    /// <summary>True while the directory listens and holds every device; until then a miss is never trusted.</summary>
    public bool Listening => _listening;

    /// <summary>The kind of each device in <paramref name="addresses"/>, in the same order; null for one not registered.</summary>
    public async ValueTask<DeviceKind?[]> LookupAsync(IReadOnlyList<EthAddress> addresses, CancellationToken cancellation)
    {
        var kinds = new DeviceKind?[addresses.Count];
        List<int>? remembered = null;
        HashSet<EthAddress>? unknown = null;
        var now = clock.GetUtcNow();
        lock (_gate)
        {
            for (var i = 0; i < addresses.Count; i++)
            {
                if (_kinds.TryGetValue(addresses[i], out var kind)) kinds[i] = kind;
                else if (_listening && _misses.TryGetValue(addresses[i], out var until) && until > now) (remembered ??= []).Add(i);
                else (unknown ??= []).Add(addresses[i]);
            }
        }
        if (remembered is not null)
        {
            // A miss refuses only once every registration committed before now has had its say.
            var synced = await SyncAsync(cancellation);
            lock (_gate)
            {
                foreach (var i in remembered)
                {
                    if (_kinds.TryGetValue(addresses[i], out var kind)) kinds[i] = kind;
                    else if (!synced || !_misses.ContainsKey(addresses[i])) (unknown ??= []).Add(addresses[i]);
                }
            }
        }
        if (unknown is null) return kinds;
        var loaded = await LoadAsync(unknown, cancellation);
        for (var i = 0; i < addresses.Count; i++)
        {
            if (kinds[i] is null && loaded.TryGetValue(addresses[i], out var kind)) kinds[i] = kind;
        }
        return kinds;
    }

    /// <summary>Looks devices up in the store: holds those registered, remembers the others as misses.</summary>
    private async Task<Dictionary<EthAddress, DeviceKind>> LoadAsync(HashSet<EthAddress> addresses, CancellationToken cancellation)
    {
        var notificationsBefore = Interlocked.Read(ref _notifications);
        var loaded = await QueryAsync(addresses, cancellation);
        var now = clock.GetUtcNow();
        lock (_gate)
        {
            foreach (var (address, kind) in loaded) _kinds[address] = kind;
            // A miss is remembered only if no registration was notified meanwhile: it might be for one of these.
            if (!_listening || Interlocked.Read(ref _notifications) != notificationsBefore) return loaded;
            if (_misses.Count + addresses.Count > MaxMisses) _misses.Clear();
            foreach (var address in addresses)
            {
                if (!loaded.ContainsKey(address)) _misses[address] = now + MissMemory;
            }
        }
        return loaded;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await ListenAsync(stoppingToken);
            }
            catch (Exception e) when (!stoppingToken.IsCancellationRequested)
            {
                logger.LogWarning("The device directory lost its notifications: {Message}; reconnecting", e.Message);
            }
            catch (Exception) when (stoppingToken.IsCancellationRequested)
            {
                // Shutting down: a query or wait cut short by the stop (Npgsql may report it as a failed command rather
                // than a cancellation) is the stop itself, not an error.
                return;
            }
            finally
            {
                StopListening();
            }
            await Task.Delay(ReconnectPause, clock, stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    private async Task ListenAsync(CancellationToken stoppingToken)
    {
        // A session of its own for as long as it listens, probed so a dead link is noticed without traffic.
        await using var connection = await sessions.OpenAsync($"depin-directory:{_schema}", stoppingToken);
        connection.Notification += (_, e) => OnNotification(e.Payload);
        await using (var listen = new NpgsqlCommand($"LISTEN \"{Channel(_schema)}\"", connection))
            await listen.ExecuteNonQueryAsync(stoppingToken);
        // Listening first, loading second: whatever commits from here on is either in the load or notified after it.
        var all = await QueryAsync(null, stoppingToken);
        all.TrimExcess();
        lock (_gate)
        {
            _kinds = all;
            _listening = true;
        }
        logger.LogInformation("Device directory holds {Count} devices and listens for registrations", all.Count);
        while (true)
        {
            await connection.WaitAsync(TimeSpan.FromSeconds(10), stoppingToken);
            await LoadNotifiedAsync(stoppingToken);
            ForgetExpiredMisses();
        }
    }

    /// <summary>Runs on the listening connection, in commit order: a device's miss goes at once, its kind is loaded after.</summary>
    private void OnNotification(string payload)
    {
        if (payload.StartsWith(SyncPrefix, StringComparison.Ordinal))
        {
            if (payload.AsSpan(SyncPrefix.Length).StartsWith(_instance) && long.TryParse(payload.AsSpan(SyncPrefix.Length + _instance.Length + 1), out var id) && _syncs.TryRemove(id, out var sync))
                sync.TrySetResult(true);
            return;
        }
        if (!EthAddress.TryParse(payload.AsSpan(), out var address)) return;
        Interlocked.Increment(ref _notifications);
        lock (_gate)
        {
            _misses.Remove(address);
            _notified.Add(address);
        }
    }

    private async Task LoadNotifiedAsync(CancellationToken cancellation)
    {
        EthAddress[] notified;
        lock (_gate)
        {
            if (_notified.Count == 0) return;
            notified = [.. _notified];
            _notified.Clear();
        }
        var loaded = await QueryAsync(notified, cancellation);
        lock (_gate)
        {
            foreach (var (address, kind) in loaded) _kinds[address] = kind;
        }
    }

    /// <summary>
    /// Makes sure every notification committed before now has been handled: sends one of its own and waits for it. False
    /// when the directory is not listening or the notification does not come back in time; misses are not trusted then.
    /// </summary>
    private async Task<bool> SyncAsync(CancellationToken cancellation)
    {
        if (!_listening) return false;
        var id = Interlocked.Increment(ref _nextSync);
        var returned = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        _syncs[id] = returned;
        try
        {
            await using (var notify = dataSource.CreateCommand("SELECT pg_notify($1, $2)"))
            {
                notify.Parameters.Add(new NpgsqlParameter { Value = Channel(_schema) });
                notify.Parameters.Add(new NpgsqlParameter { Value = $"{SyncPrefix}{_instance}:{id}" });
                await notify.ExecuteNonQueryAsync(cancellation);
            }
            return await returned.Task.WaitAsync(SyncTimeout, clock, cancellation);
        }
        catch (TimeoutException)
        {
            return false;
        }
        finally
        {
            _syncs.TryRemove(id, out _);
        }
    }

    private void StopListening()
    {
        lock (_gate)
        {
            _listening = false;
            // Registrations may commit unseen until the next connection: no miss can be trusted.
            _misses.Clear();
        }
        foreach (var id in _syncs.Keys)
        {
            if (_syncs.TryRemove(id, out var sync)) sync.TrySetResult(false);
        }
    }

    private void ForgetExpiredMisses()
    {
        var now = clock.GetUtcNow();
        lock (_gate)
        {
            foreach (var (address, until) in _misses)
            {
                if (until <= now) _misses.Remove(address);
            }
        }
    }

    /// <summary>The kinds of the given devices as stored (every device when null): id and kind only, not whole documents.</summary>
    private async Task<Dictionary<EthAddress, DeviceKind>> QueryAsync(IReadOnlyCollection<EthAddress>? addresses, CancellationToken cancellation)
    {
        await using var command = dataSource.CreateCommand($"SELECT id, data ->> 'kind' FROM {_schema}.mt_doc_device" + (addresses is null ? "" : " WHERE id = ANY($1)"));
        if (addresses is not null) command.Parameters.Add(new NpgsqlParameter { Value = addresses.Select(a => a.ToLowerHex()).ToArray() });
        var kinds = new Dictionary<EthAddress, DeviceKind>(addresses?.Count ?? 0);
        await using var reader = await command.ExecuteReaderAsync(cancellation);
        while (await reader.ReadAsync(cancellation))
        {
            if (EthAddress.TryParse(reader.GetString(0).AsSpan(), out var address) && Enum.TryParse<DeviceKind>(reader.GetString(1), out var kind))
                kinds[address] = kind;
        }
        return kinds;
    }
}
