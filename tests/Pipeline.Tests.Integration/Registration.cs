using System.Net;
using System.Net.Http.Json;
using System.Text;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Core.Registry;
using Pipeline.Streams.Registry;

namespace Pipeline.Tests.Integration;

/// <summary>Registers devices through the registry API as their owners would: the owner and the device sign the same message.</summary>
public static class Registration
{
    public static readonly Dictionary<string, string> Car = new() { ["make"] = "Volvo", ["model"] = "V40 D2", ["year"] = "2015", ["firmware"] = "2.1.0" };
    public static readonly Dictionary<string, string> Station = new() { ["latitude"] = "53.35", ["longitude"] = "-6.26", ["elevation"] = "71", ["model"] = "WS-2000" };

    /// <summary>The registration request for a device, signed by its key and its owner's.</summary>
    public static RegisterDeviceRequest Request(EthKey owner, EthKey device, DeviceKind kind, IReadOnlyDictionary<string, string>? metadata = null, DateTimeOffset? issuedAt = null)
    {
        var message = new RegistrationMessage(device.Address, owner.Address, kind, metadata ?? (kind == DeviceKind.Vehicle ? Car : Station), issuedAt ?? DateTimeOffset.UtcNow).ToJson();
        return new RegisterDeviceRequest(message, Sign(owner, message), Sign(device, message));
    }

    /// <summary>The transfer request of a device from one owner to another, signed by both.</summary>
    public static TransferDeviceRequest Transfer(EthKey device, EthKey from, EthKey to, int nonce)
    {
        var message = new TransferMessage(device.Address, from.Address, to.Address, nonce, DateTimeOffset.UtcNow).ToJson();
        return new TransferDeviceRequest(message, Sign(from, message), Sign(to, message));
    }

    public static Task<HttpResponseMessage> PostAsync(TestHost host, RegisterDeviceRequest request) => host.Api.PostAsJsonAsync("/v1/devices", request);

    /// <summary>Registers the device (to a fresh owner unless one is given) and insists on 201 Created.</summary>
    public static async Task RegisterAsync(TestHost host, EthKey device, DeviceKind kind = DeviceKind.Vehicle, EthKey? owner = null, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var response = await PostAsync(host, Request(owner ?? EthKey.Generate(), device, kind, metadata));
        Assert.True(response.StatusCode == HttpStatusCode.Created, await response.Content.ReadAsStringAsync());
    }

    public static string Sign(EthKey key, string message) => Hex.Encode0x(key.SignPersonal(Encoding.UTF8.GetBytes(message)));
}
