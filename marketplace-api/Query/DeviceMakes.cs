using System.Text;
using Marten;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Infra.Postgres;
using Pipeline.Registry;

namespace Pipeline.Marketplace.Query;

/// <summary>
/// The devices of a make, for grants restricted to one. Answered by PostgreSQL and remembered until the registry changes:
/// anyone can register devices claiming a make, so a stranger's 10,000 devices would otherwise be read again at every
/// query of every grant on that make. The registry NOTIFYs <see cref="DeviceDirectory.Channel"/> at every registration
/// and transfer; hearing one (or reconnecting, when some may have been missed) forgets everything remembered. While
/// nothing listens, every lookup asks PostgreSQL. A device's rows reach the lake seconds after its registration
/// commits, so the moment a notification takes to arrive never hides a row.
/// </summary>
public sealed class DeviceMakes(IDocumentStore store, NpgsqlDataSource dataSource, PostgresSessions sessions, ILogger<DeviceMakes> logger) : BackgroundService
{
    /// <summary>Ids remembered at most, over all makes (one at least for each): past it the memory starts again empty.</summary>
    private const int MaxRemembered = 200_000;

    private readonly Lock _gate = new();
    private readonly Dictionary<(DeviceKind Kind, string Make), IReadOnlyList<string>> _remembered = new(KeyComparer.Instance);
    private readonly Dictionary<(DeviceKind Kind, string Make), (long Changes, Task<IReadOnlyList<string>> Lookup)> _lookups = new(KeyComparer.Instance);
    private int _rememberedSize;
    private long _changes;
    private volatile bool _listening;

    /// <summary>
    /// The devices of <paramref name="kind"/> registered now whose make is <paramref name="make"/> in any case (ordinal),
    /// in address order. Callers asking for one make at once share one lookup (live feeds of a make all ask when the
    /// registry changes).
    /// </summary>
    public Task<IReadOnlyList<string>> OfAsync(DeviceKind kind, string make, CancellationToken cancellation)
    {
        var changes = Interlocked.Read(ref _changes);
        lock (_gate)
        {
            if (_listening && _remembered.TryGetValue((kind, make), out var known)) return Task.FromResult(known);
            if (_listening && _lookups.TryGetValue((kind, make), out var running) && running.Changes == changes) return running.Lookup.WaitAsync(cancellation);
            // Not run under the lock; not cancelled by this caller, whom others may be waiting beside.
            var lookup = Task.Run(() => LookupAsync(kind, make, changes), CancellationToken.None);
            if (_listening) _lookups[(kind, make)] = (changes, lookup);
            return lookup.WaitAsync(cancellation);
        }
    }

    /// <summary>
    /// PostgreSQL picks the devices and answers their ids, not their documents. The database's C locale folds the case
    /// of ASCII letters only, so a make with any other letter, or a grant's, is compared here; the rest in the database.
    /// </summary>
    private async Task<IReadOnlyList<string>> LookupAsync(DeviceKind kind, string make, long changesBefore)
    {
        await using var command = dataSource.CreateCommand($"""
            SELECT id, data -> 'metadata' ->> 'make' FROM {store.Schema()}.mt_doc_device
            WHERE data -> 'kind' = $1::jsonb AND ($3 OR lower(data -> 'metadata' ->> 'make') = lower($2) OR data -> 'metadata' ->> 'make' ~ '[^\x01-\x7f]')
            ORDER BY id
            """);
        command.Parameters.Add(new NpgsqlParameter { Value = store.Options.Serializer().ToJson(kind) });
        command.Parameters.Add(new NpgsqlParameter { Value = make });
        command.Parameters.Add(new NpgsqlParameter { Value = !Ascii.IsValid(make) });
        var devices = new List<string>();
        try
        {
            await using var reader = await command.ExecuteReaderAsync();
            while (await reader.ReadAsync())
                if (!reader.IsDBNull(1) && string.Equals(reader.GetString(1), make, StringComparison.OrdinalIgnoreCase)) devices.Add(reader.GetString(0));
        }
        finally
        {
            lock (_gate)
            {
                if (_lookups.TryGetValue((kind, make), out var running) && running.Changes == changesBefore) _lookups.Remove((kind, make));
            }
        }
        lock (_gate)
        {
            // Remembered only if the registry did not change while it was read: the answer might already be behind.
            if (!_listening || Interlocked.Read(ref _changes) != changesBefore) return devices;
            // A make without devices counts as one, so makes nobody registered cannot pile up either.
            var size = Math.Max(devices.Count, 1);
            if (_rememberedSize + size > MaxRemembered) Forget();
            _remembered[(kind, make)] = devices;
            _rememberedSize += size;
        }
        return devices;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = await sessions.OpenAsync($"depin-device-makes:{store.Schema()}", stoppingToken);
                connection.Notification += (_, e) => OnChange(e.Payload);
                await using (var listen = new NpgsqlCommand($"LISTEN \"{DeviceDirectory.Channel(store.Schema())}\"", connection))
                    await listen.ExecuteNonQueryAsync(stoppingToken);
                // Whatever changed while nothing listened is unknown here: start from nothing remembered.
                OnChange(null);
                _listening = true;
                while (true) await connection.WaitAsync(TimeSpan.FromSeconds(10), stoppingToken);
            }
            catch (Exception) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                _listening = false;
                logger.LogWarning("Device makes are asked of PostgreSQL at every query until their notifications come back: {Message}", e.Message);
                await Task.Delay(TimeSpan.FromSeconds(1), stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }
    }

    /// <summary>
    /// Raised (on the listening connection's thread: a handler must not wait) when the registry may have changed any
    /// make's devices: what was looked up before may be behind now.
    /// </summary>
    public event Action? Changed;

    /// <summary>Any registration or transfer, or a reconnection; not the device directory's own sync notifications, which change nothing.</summary>
    private void OnChange(string? payload)
    {
        if (payload is not null && !EthAddress.TryParse(payload.AsSpan(), out _)) return;
        Interlocked.Increment(ref _changes);
        lock (_gate) Forget();
        Changed?.Invoke();
    }

    private void Forget()
    {
        _remembered.Clear();
        _rememberedSize = 0;
    }

    /// <summary>Makes compared as the lookup compares them: ordinal, in any case.</summary>
    private sealed class KeyComparer : IEqualityComparer<(DeviceKind Kind, string Make)>
    {
        public static readonly KeyComparer Instance = new();

        public bool Equals((DeviceKind Kind, string Make) x, (DeviceKind Kind, string Make) y) =>
            x.Kind == y.Kind && string.Equals(x.Make, y.Make, StringComparison.OrdinalIgnoreCase);

        public int GetHashCode((DeviceKind Kind, string Make) key) => HashCode.Combine(key.Kind, StringComparer.OrdinalIgnoreCase.GetHashCode(key.Make));
    }
}
