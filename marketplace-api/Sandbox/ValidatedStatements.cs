using Microsoft.Extensions.Caching.Memory;

namespace Pipeline.Marketplace.Sandbox;

/// <summary>
/// Statements that passed the validator lately, by their exact text and the views (names, shapes, rows) and limits they
/// were checked against, with the rewrite that carries the view's device and time along (<see cref="CarriedColumns"/>)
/// once it is known. Both are functions of the text, the view names and shapes, and the limits alone (DuckDB's parser
/// decides, not the data), so a buyer repeating a query skips parsing it twice; a new checkpoint's sandbox finds them
/// too. Refusals are not kept. Kept for <see cref="Lifetime"/>, at most <see cref="Capacity"/> at once (a statement is
/// at most 16 KiB: some 32 MB at worst with its rewrite). A statement counts against the share of the buyer who
/// validated it first: a buyer past <see cref="PerBuyer"/> replaces their own oldest, so no one buyer's stream of new
/// statements evicts another's (issue 13); only when many buyers fill it together does compaction drop the least
/// recently used tenth.
/// </summary>
public sealed class ValidatedStatements : IDisposable
{
    public static readonly TimeSpan Lifetime = TimeSpan.FromMinutes(5);
    public const int Capacity = 512;
    public const int PerBuyer = 32;
    private const double CompactedShare = 0.1;

    /// <summary>What was learnt about one statement: it passed, and the rewrite carrying the view's columns (null: it does not qualify) once asked.</summary>
    public sealed record Statement(bool CarriedKnown = false, string? Carried = null);

    private sealed class Entry(LinkedListNode<Owned> node)
    {
        public LinkedListNode<Owned> Node => node;
        public volatile Statement Statement = new();
    }

    private readonly record struct Owned(string Buyer, string Scope, string Sql);

    private readonly MemoryCache _cache;
    private readonly Dictionary<string, LinkedList<Owned>> _byBuyer = [];
    private readonly Lock _gate = new();

    public ValidatedStatements(TimeProvider clock) => _cache = MarketCaches.Create(clock, Capacity);

    public Statement? Find(string scope, string sql) => _cache.TryGetValue((scope, sql), out Entry? entry) ? entry!.Statement : null;

    /// <summary>Remembers that <paramref name="sql"/> passed in <paramref name="scope"/>, against <paramref name="buyer"/>'s share.</summary>
    public void Validated(string buyer, string scope, string sql)
    {
        lock (_gate)
        {
            if (_cache.TryGetValue((scope, sql), out _)) return;
            if (_byBuyer.TryGetValue(buyer, out var owned))
                while (owned.Count >= PerBuyer) Forget(owned.First!);
            if (!_byBuyer.TryGetValue(buyer, out owned)) _byBuyer[buyer] = owned = new();
            if (_cache.Count >= Capacity) _cache.Compact(CompactedShare);
            var entry = new Entry(owned.AddLast(new Owned(buyer, scope, sql)));
            _cache.Set((scope, sql), entry, new MemoryCacheEntryOptions { Size = 1, AbsoluteExpirationRelativeToNow = Lifetime }
                .RegisterPostEvictionCallback((_, value, reason, _) =>
                {
                    // Forget has already let go of what it removed; expiry and compaction are told here, a moment later.
                    if (reason != EvictionReason.Removed) lock (_gate) Release(((Entry)value!).Node);
                }));
        }
    }

    public void Carried(string scope, string sql, string? carried)
    {
        if (_cache.TryGetValue((scope, sql), out Entry? entry))
            entry!.Statement = new Statement(CarriedKnown: true, Carried: carried);
    }

    /// <summary>Drops a buyer's statement, unless its text now holds someone else's (it expired and was validated again).</summary>
    private void Forget(LinkedListNode<Owned> node)
    {
        var key = (node.Value.Scope, node.Value.Sql);
        if (_cache.TryGetValue(key, out Entry? entry) && entry!.Node == node) _cache.Remove(key);
        Release(node);
    }

    private void Release(LinkedListNode<Owned> node)
    {
        if (node.List is not { } owned) return;
        owned.Remove(node);
        if (owned.Count == 0) _byBuyer.Remove(node.Value.Buyer);
    }

    public void Dispose() => _cache.Dispose();
}
