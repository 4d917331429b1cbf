using Pipeline.Marketplace.Sandbox;

namespace Pipeline.Marketplace.Query;

/// <summary>
/// Idle sandboxes kept for the next query over the same view: opening a DuckDB, locking it down and binding the view
/// over the lake's files costs more than a typical query. A sandbox is reused only for exactly the view it was opened
/// with (same files, same rows, same limits), so a new checkpoint or another grant opens its own; a sandbox whose query
/// failed or was stopped is never reused. At most <see cref="Capacity"/> stay idle, the least recently used go first.
/// </summary>
public sealed class SandboxPool(ValidatedStatements validated) : IDisposable
{
    public const int Capacity = 8;

    private readonly LinkedList<(string Key, SqlSandbox Sandbox)> _idle = new();
    private bool _disposed;

    /// <summary>A sandbox over <paramref name="table"/>: an idle one opened for the same view, or a new one.</summary>
    public Lease Rent(GrantedTable table, SandboxLimits limits)
    {
        var key = KeyOf(table, limits);
        lock (_idle)
        {
            for (var node = _idle.First; node is not null; node = node.Next)
                if (node.Value.Key == key)
                {
                    _idle.Remove(node);
                    return new Lease(this, key, node.Value.Sandbox);
                }
        }
        return new Lease(this, key, SqlSandbox.Open([table], limits, validated));
    }

    private static string KeyOf(GrantedTable table, SandboxLimits limits) => SqlSandbox.ViewSql(table) + "\n" + limits;

    private void Return(string key, SqlSandbox sandbox)
    {
        SqlSandbox? evicted = null;
        lock (_idle)
        {
            if (_disposed)
            {
                evicted = sandbox;
            }
            else
            {
                _idle.AddFirst((key, sandbox));
                if (_idle.Count > Capacity)
                {
                    evicted = _idle.Last!.Value.Sandbox;
                    _idle.RemoveLast();
                }
            }
        }
        evicted?.Dispose();
    }

    public void Dispose()
    {
        lock (_idle)
        {
            _disposed = true;
            foreach (var (_, sandbox) in _idle) sandbox.Dispose();
            _idle.Clear();
        }
    }

    /// <summary>One query's use of a sandbox: <see cref="Keep"/> once it ran cleanly, or it is closed on dispose.</summary>
    public sealed class Lease(SandboxPool pool, string key, SqlSandbox sandbox) : IDisposable
    {
        private bool _keep;

        public SqlSandbox Sandbox => sandbox;

        public void Keep() => _keep = true;

        public void Dispose()
        {
            if (_keep) pool.Return(key, sandbox);
            else sandbox.Dispose();
        }
    }
}
