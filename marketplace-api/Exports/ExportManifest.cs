using System.Text.Json;
using System.Text.Json.Serialization;
using Pipeline.Marketplace.Sandbox;

namespace Pipeline.Marketplace.Exports;

/// <summary>One column of an export: its name and DuckDB type.</summary>
public sealed record ExportColumn(string Name, string Type);

/// <summary>One Parquet file of an export: where it lies under the export folder, what it holds, and its digests.</summary>
public sealed record ExportFile(string Path, long Rows, long Bytes, string Sha256, string Cid);

/// <summary>
/// What an export holds and where it came from. Serialized as <c>manifest.json</c> (camelCase) and signed with EIP-191
/// over exactly those bytes; the signature is in <c>manifest.json.sig</c>.
/// </summary>
public sealed record ExportManifest(
    int Version,
    string Dataset,
    RowRestriction Slice,
    IReadOnlyList<ExportColumn> Schema,
    IReadOnlyList<string> PartitionedBy,
    int Shards,
    IReadOnlyList<ExportFile> Files,
    long Rows,
    long FirstEventSequence,
    long LastEventSequence,
    long LakeCheckpoint,
    DateTimeOffset CreatedAt,
    string Signer,
    JsonElement? Quality)
{
    public static JsonSerializerOptions Json { get; } = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };
}

/// <summary>An export as written: its manifest, the manifest's exact bytes, and their signature (0x, 65 bytes).</summary>
public sealed record ExportResult(ExportManifest Manifest, string Folder, byte[] ManifestBytes, string Signature);

/// <summary>Where an export is: preparing, writing Parquet, hashing file <c>Done</c> of <c>Total</c>, signing.</summary>
public enum ExportStage { Writing, Hashing, Signing, Done }

public sealed record ExportProgress(ExportStage Stage, int Done, int Total);
