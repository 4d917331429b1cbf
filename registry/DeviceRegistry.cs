using Marten;
using Marten.Services;
using Microsoft.Extensions.Options;
using Npgsql;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Core.Registry;
using Pipeline.Infra.Postgres;

namespace Pipeline.Registry;

/// <summary>
/// Registers and transfers devices: decides with <see cref="DeviceRegistration"/> and appends the event, one device at a
/// time (a transaction-scoped advisory lock per address), so two racing registrations cannot both succeed; the same
/// transaction notifies the device directories.
/// </summary>
public sealed class DeviceRegistry(IDocumentStore store, NpgsqlDataSource dataSource, IOptions<NetworkOptions> network, TimeProvider clock)
{
    /// <summary>The EIP-712 domain registry messages must be signed for.</summary>
    public Eip712Domain Domain { get; } = network.Value.Domain;

    public async Task<(Device? Device, Rejection? Rejection)> RegisterAsync(string typedData, string ownerSignature, string deviceSignature, CancellationToken cancellation)
    {
        var (parsed, rejection) = RegistrationMessage.Parse(typedData);
        if (parsed is null) return (null, rejection);
        return await DecideAsync(parsed.Device.ToLowerHex(), current =>
        {
            var (registered, refused) = DeviceRegistration.Register(typedData, ownerSignature, deviceSignature, current, Domain, clock.GetUtcNow());
            return (registered, refused);
        }, cancellation);
    }

    public async Task<(Device? Device, Rejection? Rejection)> TransferAsync(string device, string typedData, string fromSignature, string toSignature, CancellationToken cancellation)
    {
        var id = device.ToLowerInvariant();
        return await DecideAsync(id, current =>
        {
            var (transferred, refused) = DeviceRegistration.Transfer(id, typedData, fromSignature, toSignature, current, Domain, clock.GetUtcNow());
            return (transferred, refused);
        }, cancellation);
    }

    public async Task<Device?> FindAsync(string device, CancellationToken cancellation)
    {
        await using var session = store.QuerySession();
        return await session.LoadAsync<Device>(device.ToLowerInvariant(), cancellation);
    }

    public async Task<IReadOnlyList<Device>> OwnedByAsync(string owner, CancellationToken cancellation)
    {
        await using var session = store.QuerySession();
        var id = owner.ToLowerInvariant();
        return await session.Query<Device>().Where(d => d.Owner == id).OrderBy(d => d.Id).ToListAsync(cancellation);
    }

    private async Task<(Device?, Rejection?)> DecideAsync(string device, Func<RegisteredDevice?, (object? Event, Rejection? Rejection)> decide, CancellationToken cancellation)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellation);
        await using var transaction = await connection.BeginTransactionAsync(cancellation);
        await using (var lockCommand = new NpgsqlCommand("SELECT pg_advisory_xact_lock(hashtextextended('device:' || $1, 0))", connection, transaction))
        {
            lockCommand.Parameters.Add(new NpgsqlParameter { Value = device });
            await lockCommand.ExecuteNonQueryAsync(cancellation);
        }
        await using var session = store.LightweightSession(SessionOptions.ForTransaction(transaction));
        var current = await session.LoadAsync<Device>(device, cancellation);
        var (decided, rejection) = decide(current?.ToState());
        if (decided is null) return (null, rejection);

        session.Events.Append(device, decided);
        await session.SaveChangesAsync(cancellation);
        // Every device directory hears of it once it commits, not a moment before.
        await using (var notify = new NpgsqlCommand("SELECT pg_notify($1, $2)", connection, transaction))
        {
            notify.Parameters.Add(new NpgsqlParameter { Value = DeviceDirectory.Channel(store.Schema()) });
            notify.Parameters.Add(new NpgsqlParameter { Value = device });
            await notify.ExecuteNonQueryAsync(cancellation);
        }
        await transaction.CommitAsync(cancellation);
        await using var query = store.QuerySession();
        return (await query.LoadAsync<Device>(device, cancellation), null);
    }
}
