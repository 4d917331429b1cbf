using System.Text.Json;
using Pipeline.Core.Crypto;

namespace Pipeline.Core.Registry;

// The registry's requests and its network description as they travel: the API binds them, devices and the simulator send them.

/// <summary>A registration: the EIP-712 typed data (RegisterVehicle or RegisterWeatherStation) and the owner's and the device's signatures over it.</summary>
public sealed record RegisterDeviceRequest(JsonElement TypedData, string OwnerSignature, string DeviceSignature)
{
    /// <summary>The request for a registration signed by the owner wallet and the device key, as the simulator sends it.</summary>
    public static RegisterDeviceRequest Signed(RegistrationMessage message, EthKey owner, EthKey device) =>
        new(JsonSerializer.Deserialize<JsonElement>(message.ToJson()), message.Sign(owner), message.Sign(device));
}

/// <summary>A transfer: the EIP-712 typed data (TransferDevice), signed by the current owner (from) and the new owner (to).</summary>
public sealed record TransferDeviceRequest(JsonElement TypedData, string FromSignature, string ToSignature)
{
    public static TransferDeviceRequest Signed(TransferMessage message, EthKey from, EthKey to) =>
        new(JsonSerializer.Deserialize<JsonElement>(message.ToJson()), message.Sign(from), message.Sign(to));
}

/// <summary>What a client needs to sign registry messages for this network: the EIP-712 domain and the types.</summary>
public sealed record NetworkDescription(Eip712Domain Domain, IReadOnlyDictionary<string, IReadOnlyList<Eip712Field>> Types);
