using System.Globalization;
using System.Text;

namespace Pipeline.Core.Crypto;

/// <summary>A login the device's key signed: who, and the time it names (Unix milliseconds).</summary>
public readonly record struct VerifiedLogin(EthAddress Device, long UnixMilliseconds);

/// <summary>
/// How a device proves its key when it connects over MQTT: username = its address, password = "&lt;unix ms&gt;:&lt;0x
/// signature&gt;", the signature EIP-191 personal_sign over <c>depin mqtt login time=&lt;unix ms&gt; client=&lt;client
/// id&gt;</c> — the client id exactly as the CONNECT carries it, empty when the server is to assign one. The time is in
/// the password too because the server must rebuild the exact text signed; a fresh time per connection makes every
/// login unique, so one seen on the wire cannot be used again (the endpoint refuses a login twice).
/// </summary>
public static class DeviceLogin
{
    public static string Message(long unixMilliseconds, string clientId) =>
        string.Create(CultureInfo.InvariantCulture, $"depin mqtt login time={unixMilliseconds} client={clientId}");

    /// <summary>The password a device sends to connect as <paramref name="clientId"/> now.</summary>
    public static string Password(EthKey device, string clientId, DateTimeOffset now)
    {
        var time = now.ToUnixTimeMilliseconds();
        var signature = device.SignPersonal(Encoding.UTF8.GetBytes(Message(time, clientId)));
        return string.Create(CultureInfo.InvariantCulture, $"{time}:{Hex.Encode0x(signature)}");
    }

    /// <summary>
    /// Checks a login: the username is an address, the password's time is within <paramref name="window"/> of now, and
    /// the signature over the login text is that address's. <paramref name="refusal"/> says what is wrong otherwise.
    /// </summary>
    public static bool TryVerify(string? username, string? password, string clientId, DateTimeOffset now, TimeSpan window, out VerifiedLogin login, out string refusal)
    {
        login = default;
        if (!EthAddress.TryParse((username ?? "").AsSpan(), out var device))
        {
            refusal = "The username must be the device's address (0x + 40 hex digits).";
            return false;
        }
        var text = password ?? "";
        var colon = text.IndexOf(':', StringComparison.Ordinal);
        Span<byte> signature = stackalloc byte[PersonalSign.SignatureSize];
        if (colon is < 1 or > 16
            || !long.TryParse(text.AsSpan(0, colon), NumberStyles.None, CultureInfo.InvariantCulture, out var time)
            || !text.AsSpan(colon + 1).StartsWith("0x", StringComparison.OrdinalIgnoreCase)
            || !Hex.TryDecode(text.AsSpan(colon + 3), signature))
        {
            refusal = "The password must be <unix ms>:<0x signature>, the signature EIP-191 over \"" + Message(0, clientId).Replace("time=0", "time=<unix ms>", StringComparison.Ordinal) + "\".";
            return false;
        }
        var offset = now - DateTimeOffset.FromUnixTimeMilliseconds(Math.Clamp(time, 0, DateTimeOffset.MaxValue.ToUnixTimeMilliseconds()));
        if (offset.Duration() > window)
        {
            refusal = $"The login's time is {offset.TotalSeconds:F0} s from the server's; sign a fresh one (within {window.TotalSeconds:F0} s).";
            return false;
        }
        var check = PersonalSign.TryRecover(Encoding.UTF8.GetBytes(Message(time, clientId)), signature, out var signer);
        if (check != SignatureCheck.Valid || signer != device)
        {
            refusal = check != SignatureCheck.Valid
                ? $"The password's signature does not verify ({check})."
                : $"The login is signed by {signer.ToLowerHex()}, not by {device.ToLowerHex()}; sign it with the device's key, over this client id.";
            return false;
        }
        login = new VerifiedLogin(device, time);
        refusal = "";
        return true;
    }
}
