using System.Net;
using System.Net.Http.Json;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Core.Registry;

namespace Pipeline.Tests.Integration;

/// <summary>Registers and transfers devices through the registry API as their owners would: EIP-712 typed data, signed by both keys.</summary>
public static class Registration
{
    public static readonly Dictionary<string, string> Car = new() { ["make"] = "Volvo", ["model"] = "V40 D2", ["year"] = "2015", ["firmware"] = "2.1.0" };
    public static readonly Dictionary<string, string> Station = new() { ["latitude"] = "53.35", ["longitude"] = "-6.26", ["elevation"] = "71", ["model"] = "WS-2000" };

    /// <summary>The network test hosts serve unless a test configures another: the development default.</summary>
    public static Eip712Domain Network => RegistryDomain.Dev;

    public static RegistrationMessage Message(EthKey owner, EthKey device, DeviceKind kind = DeviceKind.Vehicle, IReadOnlyDictionary<string, string>? metadata = null, DateTimeOffset? issuedAt = null, Eip712Domain? network = null) =>
        new(device.Address, owner.Address, kind, metadata ?? (kind == DeviceKind.Vehicle ? Car : Station), issuedAt ?? DateTimeOffset.UtcNow, network ?? Network);

    /// <summary>The registration request for a device, signed by its key and its owner's.</summary>
    public static RegisterDeviceRequest Request(EthKey owner, EthKey device, DeviceKind kind = DeviceKind.Vehicle, IReadOnlyDictionary<string, string>? metadata = null, DateTimeOffset? issuedAt = null, Eip712Domain? network = null) =>
        RegisterDeviceRequest.Signed(Message(owner, device, kind, metadata, issuedAt, network), owner, device);

    public static Task<HttpResponseMessage> PostAsync(TestHost host, RegisterDeviceRequest request) => host.Api.PostAsJsonAsync("/v1/devices", request);

    /// <summary>Registers the device (to a fresh owner unless one is given) and insists on 201 Created.</summary>
    public static async Task RegisterAsync(TestHost host, EthKey device, DeviceKind kind = DeviceKind.Vehicle, EthKey? owner = null, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var response = await PostAsync(host, Request(owner ?? EthKey.Generate(), device, kind, metadata));
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
    }

    /// <summary>Transfers a device from one owner to another, both signing; <paramref name="nonce"/> is the transfers so far.</summary>
    public static Task<HttpResponseMessage> TransferAsync(TestHost host, EthKey device, EthKey from, EthKey to, int nonce) =>
        host.Api.PostAsJsonAsync($"/v1/devices/{device.Address}/transfers",
            TransferDeviceRequest.Signed(new TransferMessage(device.Address, from.Address, to.Address, nonce, DateTimeOffset.UtcNow, Network), from, to));
}
