using System.Security.Cryptography;
using System.Text;

namespace Pipeline.Marketplace.Accounts;

/// <summary>
/// Secrets the marketplace hands out: 256 random bits behind a prefix that says what the key is (so a leaked key is
/// recognisable in logs and by secret scanners). Only their SHA-256 is stored: for keys this long a slow hash adds
/// nothing, and a fast one keeps every request's look-up cheap.
/// </summary>
public static class ApiKeys
{
    public const string BuyerPrefix = "dmk_";
    public const string OperatorPrefix = "dmo_";

    public static string NewBuyerKey() => BuyerPrefix + Random(32);

    public static string NewOperatorKey() => OperatorPrefix + Random(32);

    /// <summary>A short public id for a key (listing and revoking it without the secret).</summary>
    public static string NewKeyId() => "key_" + Random(9);

    /// <summary>A buyer id: 32 random bytes in hex, so it is the bytes32 the Payments contract names.</summary>
    public static string NewBuyerId() => "0x" + Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));

    public static string NewGrantId() => "grant_" + Random(12);

    public static string NewChargeId() => "charge_" + Random(12);

    public static string NewExportId() => "export_" + Random(12);

    public static string Hash(string key) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)));

    /// <summary>Compares hashes in constant time.</summary>
    public static bool Matches(string key, string hash) =>
        CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(Hash(key)), Encoding.ASCII.GetBytes(hash));

    private static string Random(int bytes) => Base64Url(RandomNumberGenerator.GetBytes(bytes));

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
