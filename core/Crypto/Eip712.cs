using System.Buffers.Binary;
using System.Text;

namespace Pipeline.Core.Crypto;

/// <summary>A member of an EIP-712 struct type: its name and its Solidity type.</summary>
public sealed record Eip712Field(string Name, string Type)
{
    public const string Address = "address";
    public const string String = "string";
    public const string Uint256 = "uint256";
}

/// <summary>
/// An EIP-712 struct type whose members are atomic — <c>address</c>, <c>string</c> and <c>uint256</c>, all the
/// registry's messages need — with its encoding <c>Name(type1 name1,type2 name2,…)</c> and type hash.
/// </summary>
public sealed class Eip712Type
{
    public Eip712Type(string name, params Eip712Field[] fields)
    {
        if (fields.FirstOrDefault(f => f.Type is not (Eip712Field.Address or Eip712Field.String or Eip712Field.Uint256)) is { } unsupported)
            throw new ArgumentException($"{name}.{unsupported.Name}: only address, string and uint256 members are supported, not {unsupported.Type}.", nameof(fields));
        Name = name;
        Fields = fields;
        Encoded = $"{name}({string.Join(',', fields.Select(f => $"{f.Type} {f.Name}"))})";
        TypeHash = Keccak256.Hash(Encoding.UTF8.GetBytes(Encoded));
    }

    public string Name { get; }
    public IReadOnlyList<Eip712Field> Fields { get; }

    /// <summary>encodeType: the text whose keccak256 is the type hash.</summary>
    public string Encoded { get; }
    public byte[] TypeHash { get; }

    /// <summary>
    /// hashStruct = keccak256(typeHash ‖ encodeData): an address is its 20 bytes left-padded to 32, a string the keccak256
    /// of its UTF-8 bytes, a uint256 32 big-endian bytes. Values come in member order as <see cref="EthAddress"/>,
    /// <see cref="string"/> and <see cref="ulong"/>.
    /// </summary>
    public byte[] HashStruct(IReadOnlyList<object> values)
    {
        if (values.Count != Fields.Count) throw new ArgumentException($"{Name} has {Fields.Count} members, not {values.Count}.", nameof(values));
        var encoded = new byte[32 * (1 + Fields.Count)];
        TypeHash.CopyTo(encoded, 0);
        for (var i = 0; i < Fields.Count; i++)
        {
            var word = encoded.AsSpan(32 * (i + 1), 32);
            switch (Fields[i].Type, values[i])
            {
                case (Eip712Field.Address, EthAddress address):
                    address.CopyTo(word[12..]);
                    break;
                case (Eip712Field.String, string text):
                    Keccak256.Hash(Encoding.UTF8.GetBytes(text), word);
                    break;
                case (Eip712Field.Uint256, ulong number):
                    BinaryPrimitives.WriteUInt64BigEndian(word[24..], number);
                    break;
                default:
                    throw new ArgumentException($"{Name}.{Fields[i].Name} is a {Fields[i].Type}, not {values[i]?.GetType().Name ?? "null"}.", nameof(values));
            }
        }
        return Keccak256.Hash(encoded);
    }
}

/// <summary>
/// The EIP-712 domain a message is signed for: name, version and chain id. A signature over one domain is worth nothing
/// in another, so a message signed for one network cannot be replayed on another.
/// </summary>
public sealed record Eip712Domain(string Name, string Version, ulong ChainId)
{
    public static readonly Eip712Type Type = new("EIP712Domain", new("name", Eip712Field.String), new("version", Eip712Field.String), new("chainId", Eip712Field.Uint256));

    public byte[] Separator() => Type.HashStruct([Name, Version, ChainId]);

    public override string ToString() => $"chain {ChainId} (\"{Name}\" version {Version})";
}

public static class Eip712
{
    /// <summary>What is signed: keccak256(0x19 0x01 ‖ domainSeparator ‖ hashStruct(message)), as eth_signTypedData_v4 computes it.</summary>
    public static byte[] Digest(Eip712Domain domain, Eip712Type type, IReadOnlyList<object> values)
    {
        var data = new byte[2 + 32 + 32];
        data[0] = 0x19;
        data[1] = 0x01;
        domain.Separator().CopyTo(data, 2);
        type.HashStruct(values).CopyTo(data, 34);
        return Keccak256.Hash(data);
    }
}
