using Pipeline.Core.Crypto;
using Pipeline.Tests.Support;

namespace Pipeline.Tests.Unit.Crypto;

/// <summary>The MQTT login: a password foundry's cast makes by the README's recipe passes; anything else says why not.</summary>
public sealed class DeviceLoginTests
{
    private const string Key = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
    private const string Address = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266";
    private static readonly DateTimeOffset Now = DateTimeOffset.FromUnixTimeMilliseconds(1_795_460_400_123);
    private static readonly TimeSpan Window = TimeSpan.FromSeconds(30);

    [Theory]
    [InlineData("my-dongle")]
    [InlineData("")]
    public void PasswordSignedByCast_OverTheLoginText_Verifies(string clientId)
    {
        var signature = RepositoryTools.Run(RepositoryTools.Cast, ["wallet", "sign", "--private-key", Key, $"depin mqtt login time=1795460400123 client={clientId}"]);

        Assert.True(DeviceLogin.TryVerify(Address, $"1795460400123:{signature}", clientId, Now, Window, out var login, out var refusal), refusal);
        Assert.Equal((EthAddress.Parse(Address), 1_795_460_400_123L), (login.Device, login.UnixMilliseconds));
        Assert.Equal($"1795460400123:{signature}", DeviceLogin.Password(EthKey.FromHex(Key), clientId, Now));
    }

    [Fact]
    public void Login_ForAnotherClientId_OrFromAnotherKey_OrOutsideTheWindow_IsRefusedWithAReason()
    {
        var device = EthKey.FromHex(Key);
        Assert.False(DeviceLogin.TryVerify(Address, DeviceLogin.Password(device, "dongle-a", Now), "dongle-b", Now, Window, out _, out var otherClient));
        Assert.Contains("not by " + Address, otherClient);
        Assert.False(DeviceLogin.TryVerify(Address, DeviceLogin.Password(EthKey.FromSeed("someone else"u8), "dongle-a", Now), "dongle-a", Now, Window, out _, out var otherKey));
        Assert.Contains("not by " + Address, otherKey);
        Assert.False(DeviceLogin.TryVerify(Address, DeviceLogin.Password(device, "dongle-a", Now.AddSeconds(-31)), "dongle-a", Now, Window, out _, out var old));
        Assert.Contains("fresh", old);
        Assert.False(DeviceLogin.TryVerify(Address, DeviceLogin.Password(device, "dongle-a", Now.AddSeconds(31)), "dongle-a", Now, Window, out _, out _));
        Assert.True(DeviceLogin.TryVerify(Address, DeviceLogin.Password(device, "dongle-a", Now.AddSeconds(-29)), "dongle-a", Now, Window, out _, out _));
    }

    [Theory]
    [InlineData("not-an-address", "1:0x00")]
    [InlineData(Address, "")]
    [InlineData(Address, "0xabc")]
    [InlineData(Address, "1795460400123")]
    [InlineData(Address, "1795460400123:0x1234")]
    [InlineData(Address, "-5:0x1234")]
    [InlineData(Address, "99999999999999999999:0x1234")]
    public void MalformedCredentials_AreRefused_NotThrown(string username, string password)
    {
        Assert.False(DeviceLogin.TryVerify(username, password, "dongle", Now, Window, out _, out var refusal));
        Assert.NotEmpty(refusal);
    }
}
