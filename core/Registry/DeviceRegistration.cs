using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Core.Events;

namespace Pipeline.Core.Registry;

/// <summary>What the registry knows of a device when deciding on a request.</summary>
public sealed record RegisteredDevice(string Device, string Owner, DeviceKind Kind, int Transfers);

/// <summary>
/// The registry's decisions, pure functions of the signed request, the device's current state, this network's domain
/// and the time: a registration needs the owner's and the device's EIP-712 signatures over the same typed data; a
/// transfer needs the current and the new owner's over typed data carrying the transfer count.
/// </summary>
public static class DeviceRegistration
{
    /// <summary>How far a message's issuedAt may be from now.</summary>
    public static readonly TimeSpan MessageWindow = TimeSpan.FromHours(24);

    public static (DeviceRegistered? Event, Rejection? Rejection) Register(string typedData, string ownerSignature, string deviceSignature, RegisteredDevice? current, Eip712Domain network, DateTimeOffset now)
    {
        var (parsed, rejection) = RegistrationMessage.Parse(typedData);
        if (rejection is not null) return (null, rejection);
        var registration = parsed!;
        var digest = registration.Digest();
        rejection = CheckNetwork(registration.Domain, network)
            ?? CheckTime(registration.IssuedAt, now)
            ?? CheckSigner(digest, ownerSignature, registration.Owner, "owner")
            ?? CheckSigner(digest, deviceSignature, registration.Device, "device");
        if (rejection is not null) return (null, rejection);
        if (current is not null)
            return (null, new Rejection(ReasonCode.AlreadyRegistered, $"Device {current.Device} is already registered to {current.Owner}; its owner can transfer it."));
        return (new DeviceRegistered(registration.Device.ToLowerHex(), registration.Owner.ToLowerHex(), registration.Kind,
            new Dictionary<string, string>(registration.Metadata), registration.ToJson(), ownerSignature, deviceSignature, now), null);
    }

    public static (OwnershipTransferred? Event, Rejection? Rejection) Transfer(string device, string typedData, string fromSignature, string toSignature, RegisteredDevice? current, Eip712Domain network, DateTimeOffset now)
    {
        var (parsed, rejection) = TransferMessage.Parse(typedData);
        if (rejection is not null) return (null, rejection);
        var transfer = parsed!;
        if (transfer.Device.ToLowerHex() != device.ToLowerInvariant())
            return (null, new Rejection(ReasonCode.BadAddress, $"The message transfers {transfer.Device.ToLowerHex()}, not {device}."));
        var digest = transfer.Digest();
        rejection = CheckNetwork(transfer.Domain, network)
            ?? CheckTime(transfer.IssuedAt, now)
            ?? CheckSigner(digest, fromSignature, transfer.From, "current owner")
            ?? CheckSigner(digest, toSignature, transfer.To, "new owner");
        if (rejection is not null) return (null, rejection);
        if (current is null)
            return (null, new Rejection(ReasonCode.UnknownDevice, $"Device {transfer.Device.ToLowerHex()} is not registered."));
        if (current.Owner != transfer.From.ToLowerHex())
            return (null, new Rejection(ReasonCode.WrongOwner, $"Device {current.Device} belongs to {current.Owner}, not to {transfer.From.ToLowerHex()}."));
        if (transfer.Nonce != current.Transfers)
            return (null, new Rejection(ReasonCode.StaleMessage, $"The message's nonce is {transfer.Nonce}, but the device has been transferred {current.Transfers} time(s); sign a message with nonce {current.Transfers}."));
        if (transfer.To == transfer.From)
            return (null, new Rejection(ReasonCode.Malformed, "A transfer goes to another owner."));
        return (new OwnershipTransferred(current.Device, current.Owner, transfer.To.ToLowerHex(), transfer.ToJson(), fromSignature, toSignature, now), null);
    }

    private static Rejection? CheckNetwork(Eip712Domain signedFor, Eip712Domain network) =>
        signedFor == network
            ? null
            : new Rejection(ReasonCode.WrongNetwork, $"The message is signed for {signedFor}; this network is {network}. Sign it again with the domain GET /v1/network returns.");

    private static Rejection? CheckTime(DateTimeOffset issuedAt, DateTimeOffset now) =>
        (issuedAt - now).Duration() <= MessageWindow
            ? null
            : new Rejection(ReasonCode.StaleMessage, $"issuedAt {issuedAt:O} is more than {MessageWindow.TotalHours} h from now; sign a fresh message.");

    private static Rejection? CheckSigner(byte[] digest, string signature, EthAddress expected, string who)
    {
        if (signature.Length != 132 || !signature.StartsWith("0x", StringComparison.Ordinal))
            return new Rejection(ReasonCode.BadSignature, $"The {who}'s signature must be 0x followed by 130 hex digits.");
        var bytes = new byte[PersonalSign.SignatureSize];
        if (!Hex.TryDecode(signature.AsSpan(2), bytes))
            return new Rejection(ReasonCode.BadSignature, $"The {who}'s signature is not hex.");
        var check = PersonalSign.TryRecoverHash(digest, bytes, out var signer);
        if (check != SignatureCheck.Valid)
            return new Rejection(ReasonCode.BadSignature, $"The {who}'s signature does not verify ({check}); sign the typed data with EIP-712 (eth_signTypedData_v4, cast wallet sign --data, ethers' signTypedData).");
        return signer == expected
            ? null
            : new Rejection(ReasonCode.SignerMismatch, $"The {who}'s signature was made by {signer.ToLowerHex()}, not by {expected.ToLowerHex()}: the typed data it signed differs from this one, or another key signed it.");
    }
}
