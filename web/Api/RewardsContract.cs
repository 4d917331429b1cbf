using System.Text.Json;

namespace Pipeline.Web.Api;

// The rewards API as agreed with its helpers (amounts are decimal strings of base units, 18 decimals; addresses
// lower-case hex). Kept here rather than referenced: the web app is a client of that contract, like any wallet.

public sealed record ChainView(long ChainId, string Token, string Distributor, string Payments, string Treasury, int Confirmations, string? RpcUrl);

public sealed record EpochView(long Epoch, DateTimeOffset Start, DateTimeOffset End, string Status, string? MerkleRoot, string? Total, string? Emission,
    string? Sales, string? Treasury, int? Contributors, int? Devices, string? TxHash, long? Block);

public sealed record ContributorEpoch(long Epoch, string Amount, string Cumulative);

public sealed record ContributorRewards(string Address, string Cumulative, string Claimed, string Claimable, IReadOnlyList<ContributorEpoch> Epochs);

public sealed record ClaimProof(long Epoch, string Account, string CumulativeAmount, IReadOnlyList<string> Proof, string MerkleRoot, string Distributor, long ChainId);

public sealed record DeviceReward(string Device, string Kind, string Score, IReadOnlyDictionary<string, JsonElement> Components, long ReadingsCounted, bool VolumeCapped,
    IReadOnlyDictionary<string, long> RejectionsByReason, long SalesRows, long SalesCredits, JsonElement EmissionShare, JsonElement SalesShare, string Amount);

public sealed record RewardExplanation(long Epoch, string PolicyVersion, string PolicyHash, string Amount, IReadOnlyList<DeviceReward> Devices);
