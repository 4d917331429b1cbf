using System.Text;
using Pipeline.Core.Envelope;
using Pipeline.Core.Registry;
using Pipeline.Core.Signals;

namespace Pipeline.Tests.Support.Fuzz;

/// <summary>A body that made a parser throw or break its promise, with what replays it.</summary>
public sealed class FuzzFailure(string target, ulong seed, uint stream, long index, byte[] body, Exception cause)
    : Exception($"{target} failed on body {index} of seed {seed}, stream {stream}: {cause.GetType().Name}: {cause.Message}\nbody (base64): {Convert.ToBase64String(body)}", cause);

/// <summary>What the parsers made of the bodies: how many were read, and each outcome (accepted, or a reason code) counted.</summary>
public sealed class FuzzCounts
{
    public long Bodies { get; set; }
    public long Readings { get; set; }
    public SortedDictionary<string, long> Outcomes { get; } = new(StringComparer.Ordinal);

    public void Count(string outcome) => Outcomes[outcome] = Outcomes.GetValueOrDefault(outcome) + 1;

    public void Add(FuzzCounts other)
    {
        Bodies += other.Bodies;
        Readings += other.Readings;
        foreach (var (outcome, count) in other.Outcomes) Outcomes[outcome] = Outcomes.GetValueOrDefault(outcome) + count;
    }
}

/// <summary>
/// Hostile bodies through the parsers a stranger reaches: the batch parser (and the envelope parser under it, and the
/// OBD decoder for what it accepts) and the registry's typed-data parsers with its decisions. The property: every body
/// gets a result — a reading or a refusal with a reason code, a registry event or a refusal — never an exception, and
/// what is accepted keeps the parsers' promises (no control character or unpaired surrogate in any string).
/// </summary>
public static class ParserFuzz
{
    public static FuzzCounts Readings(ulong seed, long count, uint stream = 1)
    {
        var counts = new FuzzCounts();
        long index = 0;
        foreach (var (body, ndjson) in FuzzBodies.Samples(FuzzBodies.ReadingsBody, seed, stream))
        {
            if (index == count) break;
            try
            {
                CheckBatch(body, ndjson ? BatchFormat.NdJson : BatchFormat.Json, counts);
            }
            catch (Exception e)
            {
                throw new FuzzFailure("BatchParser", seed, stream, index, body, e);
            }
            index++;
        }
        return counts;
    }

    public static FuzzCounts Registry(ulong seed, long count, uint stream = 1)
    {
        var counts = new FuzzCounts();
        long index = 0;
        foreach (var typedData in FuzzBodies.Samples(FuzzBodies.TypedData, seed, stream))
        {
            if (index == count) break;
            try
            {
                CheckRegistry(typedData, counts);
            }
            catch (Exception e)
            {
                throw new FuzzFailure("DeviceRegistration", seed, stream, index, typedData, e);
            }
            index++;
        }
        return counts;
    }

    /// <summary>Runs one body through the batch parser and checks what came back.</summary>
    public static void CheckBatch(byte[] body, BatchFormat format, FuzzCounts counts)
    {
        var batch = BatchParser.Parse(body, format, EnvelopeLimits.Default);
        counts.Bodies++;
        if (batch.Error is { } error)
        {
            Require(batch.Items.Count == 0, "a failed batch carries no items");
            CheckRejection(error, counts);
            return;
        }
        Require(batch.Items.Count is > 0 and <= 1_000, $"a batch holds 1 to 1,000 items, not {batch.Items.Count}");
        for (var i = 0; i < batch.Items.Count; i++)
        {
            var item = batch.Items[i];
            counts.Readings++;
            Require(item.Index == i, "items are numbered in order");
            Require((item.Reading is null) != (item.Rejection is null), "an item is a reading or a refusal, never both or neither");
            if (item.Rejection is { } rejection)
            {
                CheckRejection(rejection, counts);
                continue;
            }
            var reading = item.Reading!;
            Require(reading.Envelope.Span.SequenceEqual(item.Raw.Span), "a reading keeps its envelope bytes as received");
            foreach (var (name, value) in reading.Content.Signals)
            {
                Require(SafeText.IndexOfForbidden(name) < 0, $"signal name {SafeText.Quote(name)} holds a forbidden character");
                Require(double.IsFinite(value), "signal values are finite");
            }
            foreach (var response in reading.Content.Obd)
            {
                Require(SafeText.IndexOfForbidden(response) < 0, "an OBD response holds a forbidden character");
                // The processors decode what the edge let through; the decoder, too, answers or refuses.
                if (!ObdCodec.TryDecode(response, out _, out var decoded, out var refused))
                    Require(refused is not null, "an OBD response that does not decode says why");
                else
                    Require(double.IsFinite(decoded), "a decoded OBD value is finite");
            }
            counts.Count("accepted");
        }
    }

    /// <summary>Runs typed data through the registration and the transfer decisions, with signatures that do not match it.</summary>
    public static void CheckRegistry(byte[] typedData, FuzzCounts counts)
    {
        var text = Encoding.UTF8.GetString(typedData);
        counts.Bodies++;
        var signature = "0x" + Convert.ToHexStringLower(typedData.AsSpan(0, Math.Min(typedData.Length, 65))).PadRight(130, '1');
        var (registered, refused) = DeviceRegistration.Register(text, signature, signature, null, RegistryDomain.Dev, FuzzBodies.Now);
        Require((registered is null) != (refused is null), "a registration is an event or a refusal");
        if (refused is not null) CheckRejection(refused, counts);
        else counts.Count("registered");

        var current = new RegisteredDevice("0x" + new string('1', 40), "0x" + new string('2', 40), DeviceKind.Vehicle, 0);
        var (transferred, transferRefused) = DeviceRegistration.Transfer(current.Device, text, signature, signature, current, RegistryDomain.Dev, FuzzBodies.Now);
        Require((transferred is null) != (transferRefused is null), "a transfer is an event or a refusal");
        if (transferRefused is not null) CheckRejection(transferRefused, counts);
        else counts.Count("transferred");
    }

    private static void CheckRejection(Rejection rejection, FuzzCounts counts)
    {
        Require(ReasonCodes.All.Contains(rejection.Code), $"reason {rejection.Code} is one of the documented codes");
        Require(rejection.Detail.Length > 0 && SafeText.IndexOfForbidden(rejection.Detail) < 0, "a refusal's detail is a safe, non-empty sentence");
        counts.Count(rejection.Code.ToWire());
    }

    private static void Require(bool condition, string promise)
    {
        if (!condition) throw new InvalidOperationException("Broken promise: " + promise);
    }

    /// <summary>Both parsers on every core: <paramref name="count"/> bodies each, split over one PCG stream per thread.</summary>
    public static (FuzzCounts Readings, FuzzCounts Registry) RunParallel(ulong seed, long count, Action<long>? progress = null)
    {
        var threads = Environment.ProcessorCount;
        var readings = new FuzzCounts();
        var registry = new FuzzCounts();
        const long Chunk = 10_000;
        var chunks = (count + Chunk - 1) / Chunk;
        long done = 0;
        Parallel.For(0, chunks * 2, new ParallelOptions { MaxDegreeOfParallelism = threads }, chunk =>
        {
            var size = Math.Min(Chunk, count - chunk / 2 * Chunk);
            var stream = (uint)(chunk / 2 + 1);
            var result = chunk % 2 == 0 ? Readings(seed, size, stream) : Registry(seed, size, stream);
            lock (readings) (chunk % 2 == 0 ? readings : registry).Add(result);
            progress?.Invoke(Interlocked.Add(ref done, size));
        });
        return (readings, registry);
    }
}
