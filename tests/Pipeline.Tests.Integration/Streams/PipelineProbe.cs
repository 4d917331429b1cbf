using System.Text;
using Confluent.Kafka;
using Marten;
using Npgsql;
using Pipeline.Core.Envelope;
using Pipeline.Core.Events;
using Pipeline.Core.Kafka;

namespace Pipeline.Tests.Integration.Streams;

/// <summary>Looks at what the processors left behind: events, dead letters, offsets; and waits for them to catch up.</summary>
public static class PipelineProbe
{
    public sealed record DeadLetter(string Reason, string Source, string? ReadingId, string Detail, byte[] Value);

    /// <summary>Waits until the processors' offsets (in the store) reach the end of every partition of the raw topic and no dead letter is pending.</summary>
    public static async Task WaitForProcessorsAsync(IPipelineView stack, string rawTopic, string group = "depin-streams", TimeSpan? timeout = null)
    {
        using var admin = new AdminClientBuilder(new AdminClientConfig { BootstrapServers = stack.KafkaBootstrapServers }).Build();
        using var consumer = new ConsumerBuilder<Ignore, Ignore>(new ConsumerConfig { BootstrapServers = stack.KafkaBootstrapServers, GroupId = "probe" }).Build();
        var partitions = admin.GetMetadata(rawTopic, TimeSpan.FromSeconds(10)).Topics.Single().Partitions.Select(p => p.PartitionId).ToList();
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(90));
        var schema = stack.Schema;
        while (true)
        {
            var ends = partitions.ToDictionary(p => p, p => consumer.QueryWatermarkOffsets(new TopicPartition(rawTopic, p), TimeSpan.FromSeconds(5)).High.Value);
            await using var connection = new NpgsqlConnection(stack.PostgresConnectionString);
            await connection.OpenAsync();
            var offsets = new Dictionary<int, long>();
            var pending = 0L;
            try
            {
                await using (var command = new NpgsqlCommand($"SELECT partition, next_offset FROM {schema}.consumer_offsets WHERE broker = $3 AND group_id = $1 AND topic = $2", connection) { Parameters = { new() { Value = group }, new() { Value = rawTopic }, new() { Value = stack.BrokerIdentity } } })
                await using (var reader = await command.ExecuteReaderAsync())
                {
                    while (await reader.ReadAsync()) offsets[reader.GetInt32(0)] = reader.GetInt64(1);
                }
                await using var letters = new NpgsqlCommand($"SELECT count(*) FROM {schema}.dead_letters WHERE NOT written", connection);
                pending = (long)(await letters.ExecuteScalarAsync())!;
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UndefinedTable)
            {
                // The processors have not created their tables yet.
            }
            if (pending == 0 && ends.All(e => e.Value == 0 || offsets.GetValueOrDefault(e.Key) >= e.Value)) return;
            if (DateTime.UtcNow > deadline)
                throw new TimeoutException($"Processors did not catch up: ends {string.Join(",", ends)} offsets {string.Join(",", offsets)} pending dead letters {pending}");
            await Task.Delay(200);
        }
    }

    public static async Task<List<ReadingAccepted>> AcceptedAsync(IPipelineView stack) =>
        (await EventsAsync(stack, "reading_accepted.v1")).Select(e => (ReadingAccepted)e.Data).ToList();

    public static async Task<List<(string Device, ReadingRejected Event)>> RejectedAsync(IPipelineView stack) =>
        (await EventsAsync(stack, "reading_rejected.v1")).Select(e => (e.StreamKey!, (ReadingRejected)e.Data)).ToList();

    private static async Task<IReadOnlyList<JasperFx.Events.IEvent>> EventsAsync(IPipelineView stack, string type)
    {
        await using var session = stack.Store.QuerySession();
        return await session.Events.QueryAllRawEvents().Where(e => e.EventTypeName == type).OrderBy(e => e.Sequence).ToListAsync();
    }

    /// <summary>The processors' dead letters (source on the raw topic), with the reading id when the envelope can be read, and the bytes as sent.</summary>
    public static List<DeadLetter> DeadLetters(TestHost host) =>
        host.ReadAll(host.RejectedTopic).Select(m =>
        {
            var reading = EnvelopeParser.Parse(m.Message.Value, EnvelopeLimits.Default).Reading;
            return new DeadLetter(
                Encoding.UTF8.GetString(m.Message.Headers.GetLastBytes(HeaderNames.Reason)),
                Encoding.UTF8.GetString(m.Message.Headers.GetLastBytes(HeaderNames.Source)),
                reading?.Id,
                Encoding.UTF8.GetString(m.Message.Headers.GetLastBytes(HeaderNames.Detail)),
                m.Message.Value);
        }).ToList();
}
