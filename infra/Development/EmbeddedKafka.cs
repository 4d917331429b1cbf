using System.Runtime.InteropServices;
using System.Text;
using Confluent.Kafka;

namespace Pipeline.Infra.Development;

/// <summary>
/// An in-memory Kafka-protocol cluster: librdkafka's mock cluster, hosted through its native API. Real clients
/// (Confluent.Kafka, kcat) reach it over TCP on 127.0.0.1; it runs on its own thread and needs no polling.
/// The native API also creates topics with a partition count (the mock has no CreateTopics) and injects faults.
/// Limits worth knowing: each partition keeps only its newest ~5 MiB, and there is no admin API (DeleteRecords included:
/// <see cref="DeleteRecords"/> moves a partition's log start through the native API instead).
/// </summary>
public sealed unsafe class EmbeddedKafka : IDisposable
{
    private const int TopicAlreadyExists = 36;
    private static readonly Lazy<Native> Api = new(Native.Load);

    private nint _client;
    private nint _cluster;

    private EmbeddedKafka(nint client, nint cluster, int brokers)
    {
        _client = client;
        _cluster = cluster;
        Brokers = brokers;
        BootstrapServers = Marshal.PtrToStringUTF8(Api.Value.Bootstraps(cluster))!;
    }

    /// <summary>"127.0.0.1:port,…": ports are chosen by the kernel and cannot be fixed.</summary>
    public string BootstrapServers { get; }

    public int Brokers { get; }

    public static EmbeddedKafka Start(int brokers = 3)
    {
        var api = Api.Value;
        var config = api.ConfNew();
        // Quiet: the host handle has no bootstrap servers of its own and would warn about it.
        SetConfig(config, "log_level", "3");
        var error = stackalloc byte[512];
        var client = api.New(0, config, error, 512);
        if (client == 0) throw new InvalidOperationException("librdkafka could not create the host handle: " + Marshal.PtrToStringUTF8((nint)error));
        var cluster = api.ClusterNew(client, brokers);
        if (cluster == 0)
        {
            api.Destroy(client);
            throw new InvalidOperationException("librdkafka could not start its mock cluster.");
        }
        // Members join at once; the default waits 3 s for more members before the first assignment.
        api.InitialRebalanceDelay(cluster, 0);
        return new EmbeddedKafka(client, cluster, brokers);
    }

    /// <summary>Creates a topic with the given partitions; an existing topic is left as it is.</summary>
    public void CreateTopic(string topic, int partitions)
    {
        var name = Marshal.StringToCoTaskMemUTF8(topic);
        int result;
        try
        {
            result = Api.Value.TopicCreate(Cluster, (byte*)name, partitions, Math.Min(3, Brokers));
        }
        finally
        {
            Marshal.FreeCoTaskMem(name);
        }
        if (result != 0 && result != TopicAlreadyExists)
            throw new KafkaException(new Error((ErrorCode)result, $"Creating topic {topic} on the embedded broker failed."));
    }

    /// <summary>Deletes a partition's records before <paramref name="offset"/>, as retention would: its log start moves there.</summary>
    public void DeleteRecords(string topic, int partition, long offset)
    {
        var name = Marshal.StringToCoTaskMemUTF8(topic);
        try
        {
            Check(Api.Value.PartitionDeleteRecords(Cluster, (byte*)name, partition, offset));
        }
        finally
        {
            Marshal.FreeCoTaskMem(name);
        }
    }

    /// <summary>Takes a broker down (-1: all): connections close and new ones are refused until <see cref="SetBrokerUp"/>.</summary>
    public void SetBrokerDown(int brokerId = -1) => Check(Api.Value.BrokerSetDown(Cluster, brokerId));

    public void SetBrokerUp(int brokerId = -1) => Check(Api.Value.BrokerSetUp(Cluster, brokerId));

    private nint Cluster => _cluster != 0 ? _cluster : throw new ObjectDisposedException(nameof(EmbeddedKafka));

    public void Dispose()
    {
        if (_cluster == 0) return;
        // The cluster must go before its host handle: destroying the handle first aborts the process.
        Api.Value.ClusterDestroy(_cluster);
        Api.Value.Destroy(_client);
        _cluster = 0;
        _client = 0;
    }

    private static void Check(int result)
    {
        if (result != 0) throw new KafkaException((ErrorCode)result);
    }

    private static void SetConfig(nint config, string name, string value)
    {
        var error = stackalloc byte[512];
        fixed (byte* n = Encoding.UTF8.GetBytes(name + "\0"))
        fixed (byte* v = Encoding.UTF8.GetBytes(value + "\0"))
        {
            if (Api.Value.ConfSet(config, n, v, error, 512) != 0)
                throw new InvalidOperationException(Marshal.PtrToStringUTF8((nint)error));
        }
    }

    /// <summary>The librdkafka functions the mock cluster needs, bound from the library Confluent.Kafka loads.</summary>
    private sealed class Native
    {
        public delegate* unmanaged<nint> ConfNew;
        public delegate* unmanaged<nint, byte*, byte*, byte*, nuint, int> ConfSet;
        public delegate* unmanaged<int, nint, byte*, nuint, nint> New;
        public delegate* unmanaged<nint, void> Destroy;
        public delegate* unmanaged<nint, int, nint> ClusterNew;
        public delegate* unmanaged<nint, void> ClusterDestroy;
        public delegate* unmanaged<nint, nint> Bootstraps;
        public delegate* unmanaged<nint, byte*, int, int, int> TopicCreate;
        public delegate* unmanaged<nint, byte*, int, long, int> PartitionDeleteRecords;
        public delegate* unmanaged<nint, int, int> BrokerSetDown;
        public delegate* unmanaged<nint, int, int> BrokerSetUp;
        public delegate* unmanaged<nint, int, void> InitialRebalanceDelay;

        public static Native Load()
        {
            // Let Confluent.Kafka pick its build first (on Debian the SASL-free centos8 one), then bind the same file.
            Library.Load();
            var library = Candidates().Select(TryLoad).FirstOrDefault(h => h != 0);
            if (library == 0) throw new DllNotFoundException("librdkafka (from the librdkafka.redist package) could not be loaded.");
            return new Native
            {
                ConfNew = (delegate* unmanaged<nint>)NativeLibrary.GetExport(library, "rd_kafka_conf_new"),
                ConfSet = (delegate* unmanaged<nint, byte*, byte*, byte*, nuint, int>)NativeLibrary.GetExport(library, "rd_kafka_conf_set"),
                New = (delegate* unmanaged<int, nint, byte*, nuint, nint>)NativeLibrary.GetExport(library, "rd_kafka_new"),
                Destroy = (delegate* unmanaged<nint, void>)NativeLibrary.GetExport(library, "rd_kafka_destroy"),
                ClusterNew = (delegate* unmanaged<nint, int, nint>)NativeLibrary.GetExport(library, "rd_kafka_mock_cluster_new"),
                ClusterDestroy = (delegate* unmanaged<nint, void>)NativeLibrary.GetExport(library, "rd_kafka_mock_cluster_destroy"),
                Bootstraps = (delegate* unmanaged<nint, nint>)NativeLibrary.GetExport(library, "rd_kafka_mock_cluster_bootstraps"),
                TopicCreate = (delegate* unmanaged<nint, byte*, int, int, int>)NativeLibrary.GetExport(library, "rd_kafka_mock_topic_create"),
                PartitionDeleteRecords = (delegate* unmanaged<nint, byte*, int, long, int>)NativeLibrary.GetExport(library, "rd_kafka_mock_partition_delete_records"),
                BrokerSetDown = (delegate* unmanaged<nint, int, int>)NativeLibrary.GetExport(library, "rd_kafka_mock_broker_set_down"),
                BrokerSetUp = (delegate* unmanaged<nint, int, int>)NativeLibrary.GetExport(library, "rd_kafka_mock_broker_set_up"),
                InitialRebalanceDelay = (delegate* unmanaged<nint, int, void>)NativeLibrary.GetExport(library, "rd_kafka_mock_group_initial_rebalance_delay_ms"),
            };
        }

        private static IEnumerable<string> Candidates() => ["librdkafka", "centos8-librdkafka.so", "alpine-librdkafka.so"];

        private static nint TryLoad(string name) =>
            NativeLibrary.TryLoad(name, typeof(Library).Assembly, DllImportSearchPath.SafeDirectories | DllImportSearchPath.AssemblyDirectory, out var handle) ? handle : 0;
    }
}
