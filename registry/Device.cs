using Marten.Events.Aggregation;
using Pipeline.Core.Envelope;
using Pipeline.Core.Events;
using Pipeline.Core.Registry;

namespace Pipeline.Registry;

/// <summary>The registry's read model: one document per device, kept by <see cref="DeviceProjection"/> from its stream.</summary>
public sealed class Device
{
    /// <summary>The device address in lower-case hex: the stream id and the Kafka key.</summary>
    public string Id { get; set; } = "";
    public string Owner { get; set; } = "";
    public DeviceKind Kind { get; set; }
    public Dictionary<string, string> Metadata { get; set; } = [];
    public DateTimeOffset RegisteredAt { get; set; }
    public int Transfers { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }

    public RegisteredDevice ToState() => new(Id, Owner, Kind, Transfers);
}

/// <summary>Device documents from DeviceRegistered and OwnershipTransferred, updated in the transaction that appends them.</summary>
public sealed partial class DeviceProjection : SingleStreamProjection<Device, string>
{
    public Device Create(DeviceRegistered registered) => new()
    {
        Id = registered.Device,
        Owner = registered.Owner,
        Kind = registered.Kind,
        Metadata = new Dictionary<string, string>(registered.Metadata),
        RegisteredAt = registered.RegisteredAt,
        UpdatedAt = registered.RegisteredAt,
    };

    public void Apply(OwnershipTransferred transferred, Device device)
    {
        device.Owner = transferred.NewOwner;
        device.Transfers++;
        device.UpdatedAt = transferred.TransferredAt;
    }
}
