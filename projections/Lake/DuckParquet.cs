using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using Apache.Arrow;
using Apache.Arrow.C;
using DuckDB.NET.Data;

namespace Pipeline.Projections.Lake;

/// <summary>
/// Record batches made one after another (compaction's merge) written to a Parquet file by DuckDB, in the order they
/// come. Arrow's writer (ParquetSharp) ends a data page every 20,000 rows and nothing lets us change it; DuckDB writes a
/// column chunk as one page, and its reader scans such files faster (issue 16, README "The lake's speed"). DuckDB pulls
/// the batches through the Arrow C stream interface as it writes, so it holds about the row group it is writing and a
/// batch, never the file: no sort, nothing that grows with the partition.
/// </summary>
internal static partial class DuckParquet
{
    /// <summary>
    /// A cap on DuckDB's memory for one file. With no sort it buffers the row group it is writing (122,880 rows) and the
    /// batch it is reading, whatever the file's size; what does not fit spills to a folder beside the file, removed
    /// afterwards.
    /// </summary>
    private const string MemoryLimit = "256MB";

    /// <summary>Writes <paramref name="batches"/> (of <paramref name="schema"/>) to <paramref name="path"/> and syncs it; returns its SHA-256.</summary>
    public static async Task<string> WriteAsync(string path, Schema schema, IAsyncEnumerable<RecordBatch> batches)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        var spill = path + ".spill";
        await using var source = new Source(schema, batches);
        try
        {
            using (var duckdb = new DuckDBConnection("DataSource=:memory:"))
            {
                duckdb.Open();
                // One thread, in order: the batches come in file order and make row groups of exactly RowGroupRows.
                LakeCatalog.Execute(duckdb, $"SET threads = 1; SET preserve_insertion_order = true; SET memory_limit = '{MemoryLimit}'; SET temp_directory = {LakeCatalog.Quote(spill)}");
                source.Register(duckdb, "batches");
                try
                {
                    LakeCatalog.Execute(duckdb, $"COPY (SELECT * FROM batches) TO {LakeCatalog.Quote(path)} (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ParquetFiles.RowGroupRows})");
                }
                catch when (source.Failure is { } failure)
                {
                    // The merge's own exception (an input found out of order is sorted alone and the merge begins again).
                    failure.Throw();
                }
            }
            return ParquetFiles.Sync(path);
        }
        catch
        {
            File.Delete(path);
            throw;
        }
        finally
        {
            if (Directory.Exists(spill)) Directory.Delete(spill, recursive: true);
        }
    }

    /// <summary>Registers a view over an Arrow C stream, scanned once; DuckDB neither releases the stream nor the schemas it asks for.</summary>
    [LibraryImport("duckdb", StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int duckdb_arrow_scan(IntPtr connection, string tableName, ArrowArrayStream* stream);

    /// <summary>The Arrow C stream interface's struct (its Apache.Arrow counterpart keeps its callbacks internal).</summary>
    [StructLayout(LayoutKind.Sequential)]
    private unsafe struct ArrowArrayStream
    {
        public delegate* unmanaged<ArrowArrayStream*, ArrowSchema*, int> GetSchema;
        public delegate* unmanaged<ArrowArrayStream*, CArrowArray*, int> GetNext;
        public delegate* unmanaged<ArrowArrayStream*, byte*> GetLastError;
        public delegate* unmanaged<ArrowArrayStream*, void> Release;
        public void* PrivateData;
    }

    /// <summary>The Arrow C schema struct, to hand out copies whose release does nothing.</summary>
    [StructLayout(LayoutKind.Sequential)]
    private unsafe struct ArrowSchema
    {
        public byte* Format;
        public byte* Name;
        public byte* Metadata;
        public long Flags;
        public long ChildCount;
        public ArrowSchema** Children;
        public ArrowSchema* Dictionary;
        public delegate* unmanaged<ArrowSchema*, void> Release;
        public void* PrivateData;
    }

    /// <summary>The batches behind the C stream, and what the stream owns: the exported schema, the last error.</summary>
    private sealed class Source : IAsyncDisposable
    {
        private readonly IAsyncEnumerator<RecordBatch> _batches;
        private readonly unsafe ArrowSchema* _schema;
        private readonly unsafe ArrowArrayStream* _stream;
        private GCHandle _self;
        private unsafe byte* _error;

        public unsafe Source(Schema schema, IAsyncEnumerable<RecordBatch> batches)
        {
            _batches = batches.GetAsyncEnumerator();
            _schema = (ArrowSchema*)CArrowSchema.Create();
            CArrowSchemaExporter.ExportSchema(schema, (CArrowSchema*)_schema);
            _self = GCHandle.Alloc(this);
            _stream = (ArrowArrayStream*)NativeMemory.AllocZeroed((nuint)sizeof(ArrowArrayStream));
            *_stream = new ArrowArrayStream { GetSchema = &GetSchema, GetNext = &GetNext, GetLastError = &GetLastError, Release = &Release, PrivateData = (void*)GCHandle.ToIntPtr(_self) };
        }

        /// <summary>Makes the batches DuckDB's view <paramref name="name"/>, to be scanned once.</summary>
        public unsafe void Register(DuckDBConnection duckdb, string name)
        {
            if (duckdb_arrow_scan(duckdb.NativeConnection.DangerousGetHandle(), name, _stream) != 0)
                throw new InvalidOperationException("DuckDB did not take the merge's Arrow stream.");
        }

        /// <summary>What the batches threw, which DuckDB reports only as a message.</summary>
        public ExceptionDispatchInfo? Failure { get; private set; }

        private static unsafe Source From(ArrowArrayStream* stream) => (Source)GCHandle.FromIntPtr((IntPtr)stream->PrivateData).Target!;

        [UnmanagedCallersOnly]
        private static unsafe int GetSchema(ArrowArrayStream* stream, ArrowSchema* schema)
        {
            // A shallow copy whose release does nothing: DuckDB asks more than once and releases none of them (its
            // duckdb_arrow_scan); ours is freed with the source.
            *schema = *From(stream)._schema;
            schema->Release = &ReleaseNothing;
            return 0;
        }

        [UnmanagedCallersOnly]
        private static unsafe int GetNext(ArrowArrayStream* stream, CArrowArray* array)
        {
            var source = From(stream);
            try
            {
                NativeMemory.Clear(array, (nuint)sizeof(CArrowArray)); // released: the end of the stream
                // DuckDB calls from the thread running the COPY; the merge's reads complete synchronously.
                if (!source._batches.MoveNextAsync().AsTask().GetAwaiter().GetResult()) return 0;
                // The batch's buffers move to the exported array, freed when DuckDB releases it.
                CArrowArrayExporter.ExportRecordBatch(source._batches.Current, array);
                return 0;
            }
            catch (Exception e)
            {
                source.Failure = ExceptionDispatchInfo.Capture(e);
                Marshal.FreeCoTaskMem((IntPtr)source._error);
                source._error = (byte*)Marshal.StringToCoTaskMemUTF8(e.Message);
                return 5; // EIO
            }
        }

        [UnmanagedCallersOnly]
        private static unsafe byte* GetLastError(ArrowArrayStream* stream) => From(stream)._error;

        [UnmanagedCallersOnly]
        private static unsafe void Release(ArrowArrayStream* stream) => stream->Release = null;

        [UnmanagedCallersOnly]
        private static unsafe void ReleaseNothing(ArrowSchema* schema) => schema->Release = null;

        public async ValueTask DisposeAsync()
        {
            await _batches.DisposeAsync();
            FreeNative();
        }

        private unsafe void FreeNative()
        {
            CArrowSchema.Free((CArrowSchema*)_schema);
            NativeMemory.Free(_stream);
            Marshal.FreeCoTaskMem((IntPtr)_error);
            _self.Free();
        }
    }
}
