using DuckDB.NET.Data;
using Pipeline.Marketplace.Attribution;
using Pipeline.Marketplace.Sandbox;

namespace Pipeline.Marketplace.Exports;

/// <summary>
/// An export's DuckDB, opened over the grant's view and described (<see cref="ExportEngine.Open"/>): it counts the slice
/// and the engine writes it. The rows per device and epoch are counted on a second connection to the same database,
/// so beside the COPY, from the very view the COPY writes, without opening another DuckDB.
/// </summary>
public sealed class OpenExport : IDisposable
{
    internal OpenExport(ExportRequest request, DuckDBConnection connection, IReadOnlyList<ExportColumn> schema)
    {
        Request = request;
        Connection = connection;
        Schema = schema;
    }

    public ExportRequest Request { get; }

    /// <summary>The columns the files will hold (with <c>shard</c> when split).</summary>
    public IReadOnlyList<ExportColumn> Schema { get; }

    internal DuckDBConnection Connection { get; }

    /// <summary>The slice's rows (a scan); not while the export is being written.</summary>
    public long CountRows() => SqlSandbox.CountRows(Connection, Request.Table.Name);

    /// <summary>
    /// The slice's rows per device and epoch, on a connection of its own: it may run while the export is being written.
    /// It scans the whole slice, as the COPY does, so <paramref name="stop"/> interrupts it when the job ends otherwise.
    /// </summary>
    public IReadOnlyList<DeviceShare> CountShares(TimeSpan epochLength, CancellationToken stop)
    {
        // A duplicate shares the database (its view, its locked settings); it is handed out closed.
        using var counting = Connection.Duplicate();
        counting.Open();
        try
        {
            var shares = SqlSandbox.CountShares(counting, Request.Table.Name, Request.Table.Shape, epochLength, stop);
            // Interrupted as it ended, a count may be cut short without an error: never taken as whole.
            stop.ThrowIfCancellationRequested();
            return shares;
        }
        catch (DuckDBException) when (stop.IsCancellationRequested)
        {
            throw new OperationCanceledException(stop);
        }
    }

    /// <summary>Closes the database; not while a count or the COPY runs.</summary>
    public void Dispose() => Connection.Dispose();
}
