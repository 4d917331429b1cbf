using Nethereum.ABI.FunctionEncoding.Attributes;
using Nethereum.Contracts;
using Nethereum.RPC.Eth.DTOs;
using Nethereum.Web3;

namespace Pipeline.Rewards.Chain;

/// <summary>A block the follower has read up to: its number and the hash it had then.</summary>
public sealed record BlockCheckpoint(long Number, string Hash);

/// <summary>A log the follower has already yielded, kept while a reorganisation could make it be read again.</summary>
public sealed record SeenLog(string TransactionHash, long LogIndex, long BlockNumber);

/// <summary>
/// Where a <see cref="LogFollower{TEvent}"/> stands. A plain record: the caller stores it in the same transaction as
/// what it did with the logs it got, and hands it back to the next poll (or to a new follower after a restart).
/// </summary>
/// <param name="NextBlock">The first block not read yet.</param>
/// <param name="Checkpoints">Recent blocks read up to, oldest first: on a mismatch the follower steps back to the newest that still matches.</param>
/// <param name="Seen">Logs yielded from blocks after the oldest checkpoint: read again after a step back, they are not yielded twice.</param>
public sealed record LogCursor(long NextBlock, IReadOnlyList<BlockCheckpoint> Checkpoints, IReadOnlyList<SeenLog> Seen)
{
    public static LogCursor StartAt(long block) => new(block, [], []);
}

/// <summary>A contract event the follower yields, with where it was found.</summary>
public sealed record FollowedLog<TEvent>(TEvent Event, string TransactionHash, long LogIndex, long BlockNumber, string BlockHash);

/// <summary>What one poll found, and the cursor to store with it.</summary>
public sealed record LogBatch<TEvent>(IReadOnlyList<FollowedLog<TEvent>> Logs, LogCursor Cursor, int ReorgedBlocks);

/// <summary>Thrown when none of the cursor's checkpoints is on the chain any more: reorganised deeper than the cursor remembers, or a reset chain.</summary>
public sealed class ChainReorganisedBeyondCursorException(long oldestCheckpoint)
    : Exception($"The chain no longer holds block {oldestCheckpoint} as the cursor saw it, nor any later block it read: it was reset or reorganised deeper than the cursor remembers. Start a new cursor (and reconcile what was credited) if the chain was reset on purpose.")
{
    public long OldestCheckpoint { get; } = oldestCheckpoint;
}

/// <summary>
/// Follows one event of one contract through <c>eth_getLogs</c>, reading only blocks at least <c>confirmations</c>
/// deep, and yields each log exactly once per (transaction hash, log index) as long as the cursor it returns is
/// kept: a reorganisation is found by comparing the cursor's block hashes with the chain's, and the follower then
/// steps back to the newest block that still matches and reads again, skipping what it already yielded.
/// </summary>
public sealed class LogFollower<TEvent>(Web3 web3, string contract, int confirmations, int maxBlocksPerPoll = 2_000, int checkpointsKept = 64)
    where TEvent : IEventDTO, new()
{
    private readonly Event<TEvent> _event = web3.Eth.GetEvent<TEvent>(contract);

    public async Task<LogBatch<TEvent>> PollAsync(LogCursor cursor, CancellationToken cancellationToken = default)
    {
        var (checkedCursor, reorged) = await StepBackPastReorganisationAsync(cursor, cancellationToken);
        var head = (long)(await web3.Eth.Blocks.GetBlockNumber.SendRequestAsync().WaitAsync(cancellationToken)).Value;
        var to = Math.Min(head - confirmations, checkedCursor.NextBlock + maxBlocksPerPoll - 1);
        if (to < checkedCursor.NextBlock) return new LogBatch<TEvent>([], checkedCursor, reorged);

        var toHash = await BlockHashAsync(to, cancellationToken);
        var filter = _event.CreateFilterInput(new BlockParameter((ulong)checkedCursor.NextBlock), new BlockParameter((ulong)to));
        var logs = await _event.GetAllChangesAsync(filter).WaitAsync(cancellationToken);
        // If the chain changed while the logs were read, they may mix two branches: keep nothing, read again next poll.
        if (toHash is null || await BlockHashAsync(to, cancellationToken) != toHash
            || (checkedCursor.Checkpoints.Count > 0 && !await MatchesAsync(checkedCursor.Checkpoints[^1], cancellationToken)))
            return new LogBatch<TEvent>([], checkedCursor, reorged);

        var seen = checkedCursor.Seen.Select(s => (s.TransactionHash, s.LogIndex)).ToHashSet();
        var fresh = new List<FollowedLog<TEvent>>();
        foreach (var log in logs.OrderBy(l => l.Log.BlockNumber.Value).ThenBy(l => l.Log.LogIndex.Value))
        {
            var followed = new FollowedLog<TEvent>(log.Event, log.Log.TransactionHash, (long)log.Log.LogIndex.Value, (long)log.Log.BlockNumber.Value, log.Log.BlockHash);
            if (seen.Add((followed.TransactionHash, followed.LogIndex))) fresh.Add(followed);
        }

        var checkpoints = checkedCursor.Checkpoints.Append(new BlockCheckpoint(to, toHash)).TakeLast(checkpointsKept).ToList();
        // A log at or below the oldest checkpoint can never be read again (the follower never steps back further).
        var kept = checkedCursor.Seen
            .Concat(fresh.Select(l => new SeenLog(l.TransactionHash, l.LogIndex, l.BlockNumber)))
            .Where(s => s.BlockNumber > checkpoints[0].Number)
            .ToList();
        return new LogBatch<TEvent>(fresh, new LogCursor(to + 1, checkpoints, kept), reorged);
    }

    /// <summary>Drops checkpoints the chain no longer has, newest first, and resumes after the newest that remains.</summary>
    private async Task<(LogCursor Cursor, int ReorgedBlocks)> StepBackPastReorganisationAsync(LogCursor cursor, CancellationToken cancellationToken)
    {
        var checkpoints = cursor.Checkpoints.ToList();
        while (checkpoints.Count > 0 && !await MatchesAsync(checkpoints[^1], cancellationToken)) checkpoints.RemoveAt(checkpoints.Count - 1);
        if (checkpoints.Count == cursor.Checkpoints.Count) return (cursor, 0);
        if (checkpoints.Count == 0) throw new ChainReorganisedBeyondCursorException(cursor.Checkpoints[0].Number);
        var resumeAt = checkpoints[^1].Number + 1;
        return (cursor with { NextBlock = resumeAt, Checkpoints = checkpoints }, (int)(cursor.NextBlock - resumeAt));
    }

    private async Task<bool> MatchesAsync(BlockCheckpoint checkpoint, CancellationToken cancellationToken) =>
        await BlockHashAsync(checkpoint.Number, cancellationToken) == checkpoint.Hash;

    private async Task<string?> BlockHashAsync(long number, CancellationToken cancellationToken)
    {
        var block = await web3.Eth.Blocks.GetBlockWithTransactionsHashesByNumber.SendRequestAsync(new BlockParameter((ulong)number))
            .WaitAsync(cancellationToken);
        return block?.BlockHash;
    }
}
