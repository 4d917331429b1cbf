using System.Net;
using System.Net.Http.Json;
using System.Threading.Channels;
using Pipeline.Simulator.Senders;
using Pipeline.Core.Envelope;
using Pipeline.Core.Registry;

namespace Pipeline.Simulator;

/// <summary>What a run did: every reading in the ledger, and the counters.</summary>
public sealed record SimulationResult(Ledger Ledger, SimulationStats Stats, Fleet Fleet, TimeSpan Elapsed);

/// <summary>
/// Runs a fleet against a running pipeline: registers the devices, then every tick samples the devices that are due,
/// signs what they say (misbehaving on request) and hands it to senders — lanes that keep each device's readings in
/// order — until the duration is up or every replay has finished.
/// </summary>
public sealed class Simulation(SimulatorOptions options, TimeProvider clock)
{
    private const int HttpLanes = 4;
    private const int MqttLanes = 8;
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(100);

    // Saved every few seconds with seqs this far ahead: more than any device sends between two saves.
    private static readonly TimeSpan SaveInterval = TimeSpan.FromSeconds(5);
    private const long SeqReserve = 10_000;

    public SimulationStats Stats { get; } = new();
    public Ledger Ledger { get; } = new(options.KeepLedger);

    public async Task<SimulationResult> RunAsync(CancellationToken cancellation)
    {
        var start = clock.GetUtcNow();
        using var fleet = Fleet.Create(options, start);
        await RegisterAsync(fleet, cancellation);

        var misbehaver = new Misbehaver(options, fleet, Ledger);
        var lanes = new List<Lane>();
        for (var i = 0; i < HttpLanes; i++) lanes.Add(new Lane(new HttpSender(options.IngestUrl, Stats), Stats));
        for (var i = 0; i < MqttLanes; i++) lanes.Add(new Lane(new MqttSender(options.MqttHost, options.MqttPort, Stats, clock), Stats));
        var laneTasks = lanes.Select(lane => lane.RunAsync(cancellation)).ToList();

        // Devices are spread over the lanes of their own transport, numbered within it so every lane carries some.
        var laneOf = new int[fleet.Devices.Count];
        var (httpDevices, mqttDevices) = (0, 0);
        for (var i = 0; i < fleet.Devices.Count; i++)
            laneOf[i] = fleet.Devices[i].Transport == TransportMode.Mqtt ? HttpLanes + mqttDevices++ % MqttLanes : httpDevices++ % HttpLanes;

        var onlyReplay = options.Vehicles == 0 && options.Stations == 0 && options.Replay.Count > 0;
        var lastSave = start;
        var end = start + options.Duration;
        var batches = lanes.Select(_ => new List<Outgoing>()).ToList();
        try
        {
            while (!cancellation.IsCancellationRequested)
            {
                var now = clock.GetUtcNow();
                if (onlyReplay ? fleet.Devices.All(d => d.Source.Finished) : now >= end) break;
                for (var i = 0; i < fleet.Devices.Count; i++)
                {
                    var device = fleet.Devices[i];
                    if (device.Source.Finished || device.Source.NextDue > now) continue;
                    if (device.Source.Sample(now) is not var (signals, obd)) continue;
                    batches[laneOf[i]].AddRange(misbehaver.Emit(device, device.Transport, now, signals, obd));
                }
                for (var lane = 0; lane < lanes.Count; lane++)
                {
                    if (batches[lane].Count == 0) continue;
                    await lanes[lane].Queue.Writer.WriteAsync(batches[lane], cancellation);
                    batches[lane] = [];
                }
                if (now - lastSave >= SaveInterval)
                {
                    fleet.Save(reserve: SeqReserve);
                    lastSave = now;
                }
                await Task.Delay(Tick, clock, cancellation);
            }
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            // Ctrl-C: stop sampling, still let the lanes finish what they hold.
        }
        foreach (var lane in lanes) lane.Queue.Writer.Complete();
        using var drain = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await Task.WhenAll(laneTasks).WaitAsync(drain.Token).ContinueWith(_ => { }, TaskScheduler.Default);
        foreach (var lane in lanes) await lane.Sender.DisposeAsync();
        fleet.Save();
        return new SimulationResult(Ledger, Stats, fleet, clock.GetUtcNow() - start);
    }

    /// <summary>Registers every device (owner and device sign); one already registered is fine.</summary>
    private async Task RegisterAsync(Fleet fleet, CancellationToken cancellation)
    {
        using var client = new HttpClient { BaseAddress = new Uri(options.ApiUrl.TrimEnd('/') + "/"), Timeout = TimeSpan.FromSeconds(30) };
        try
        {
            using var health = await client.GetAsync("health", cancellation);
        }
        catch (HttpRequestException e)
        {
            throw new InvalidOperationException($"The registry API at {options.ApiUrl} does not answer ({e.Message}). Start the pipeline with ./depin up, or pass --api.", e);
        }
        // Registrations are signed for the network the API serves.
        var network = (await client.GetFromJsonAsync<NetworkDescription>("v1/network", cancellation))!.Domain;
        await Parallel.ForEachAsync(fleet.Devices, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = cancellation }, async (device, token) =>
        {
            var request = RegisterDeviceRequest.Signed(device.RegistrationMessage(clock.GetUtcNow(), network), device.Owner, device.Key);
            while (true)
            {
                using var response = await client.PostAsJsonAsync("v1/devices", request, token);
                // The registry limits sign-ups per client: wait as told and try again.
                if (response.StatusCode == HttpStatusCode.TooManyRequests)
                {
                    await Task.Delay(response.Headers.RetryAfter?.Delta ?? TimeSpan.FromSeconds(1), clock, token);
                    continue;
                }
                if (response.StatusCode is not (HttpStatusCode.Created or HttpStatusCode.Conflict))
                    throw new InvalidOperationException($"Registering {device.Name} failed: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync(token)}");
                break;
            }
            Stats.AddRegistered();
        });
    }

    /// <summary>One sender and its queue: batches go out one after another, so a device's readings keep their order.</summary>
    private sealed class Lane(IReadingSender sender, SimulationStats stats)
    {
        public IReadingSender Sender { get; } = sender;
        public Channel<List<Outgoing>> Queue { get; } = Channel.CreateUnbounded<List<Outgoing>>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });

        public async Task RunAsync(CancellationToken cancellation)
        {
            while (await Queue.Reader.WaitToReadAsync(CancellationToken.None))
            {
                // Whatever piled up while the last send was out goes in one request.
                var batch = new List<Outgoing>();
                while (batch.Count < EnvelopeLimits.Default.MaxBatchReadings && Queue.Reader.TryRead(out var more)) batch.AddRange(more);
                try
                {
                    await Sender.SendAsync(batch, cancellation);
                }
                catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
                {
                    return;
                }
                catch (Exception e)
                {
                    // A lane never dies: the batch is marked failed and the next one goes out.
                    foreach (var item in batch.Where(i => i.Entry.Edge == "")) item.Entry.Edge = $"failed:{e.GetType().Name}: {e.Message}";
                    stats.Fail(e);
                }
            }
        }
    }
}
