using Marten.Events.Projections;
using Pipeline.Core.Events;

namespace Pipeline.Marketplace.Accounts;

/// <summary>
/// A buyer API key, a document of its own (id: the key id): the SHA-256 of the key, never the key, found by that hash
/// through a unique index when a request is authenticated. Kept apart from the account so that the account, rewritten
/// by every charge, carries no index of its keys.
/// </summary>
public sealed class BuyerKey
{
    public string Id { get; set; } = "";
    public string BuyerId { get; set; } = "";
    public string Hash { get; set; } = "";
    public string Label { get; set; } = "";
    public DateTimeOffset IssuedAt { get; set; }
    public DateTimeOffset? RevokedAt { get; set; }
}

/// <summary>The key documents, from the keys issued and revoked in the buyers' streams.</summary>
public sealed partial class BuyerKeyProjection : MultiStreamProjection<BuyerKey, string>
{
    public BuyerKeyProjection()
    {
        Identity<ApiKeyIssued>(e => e.KeyId);
        Identity<ApiKeyRevoked>(e => e.KeyId);
    }

    public BuyerKey Create(ApiKeyIssued issued) =>
        new() { Id = issued.KeyId, BuyerId = issued.BuyerId, Hash = issued.KeyHash, Label = issued.Label, IssuedAt = issued.IssuedAt };

    public void Apply(ApiKeyRevoked revoked, BuyerKey key) => key.RevokedAt ??= revoked.RevokedAt;
}
