using Pipeline.Core.Crypto;
using Spectre.Console;

namespace Pipeline.Bench;

/// <summary>Signer recovery (EIP-191): libsecp256k1 through P/Invoke against BouncyCastle, one thread and all cores.</summary>
public static class RecoveryBench
{
    public static void Run(TimeSpan duration)
    {
        var native = NativeSecp256k1.TryLoad() ?? throw new InvalidOperationException("libsecp256k1 is not installed; run ./depin to set up.");
        var managed = ManagedSecp256k1.Instance;
        var samples = Samples(256);

        var results = new List<Throughput>();
        foreach (var (curve, threads) in new[] { ((Secp256k1)native, 1), (managed, 1), (native, Environment.ProcessorCount), (managed, Environment.ProcessorCount) })
        {
            results.Add(Measure.For($"{curve.Name}, {threads} thread(s)", duration, () => RecoverAll(samples, curve, threads)));
        }

        var table = new Table().AddColumn("Path").AddColumn(new TableColumn("Recoveries/s").RightAligned()).AddColumn(new TableColumn("vs managed").RightAligned());
        for (var i = 0; i < results.Count; i++)
        {
            var baseline = results[i % 2 == 0 ? i + 1 : i];
            table.AddRow(results[i].Name, $"{results[i].PerSecond:N0}", $"{results[i].PerSecond / baseline.PerSecond:F1}×");
        }
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLineInterpolated($"Native is [green]{results[0].PerSecond / results[1].PerSecond:F1}×[/] the managed path on one thread ({Environment.ProcessorCount} cores here).");
    }

    private static int RecoverAll((byte[] Hash, byte[] Signature)[] samples, Secp256k1 curve, int threads)
    {
        Parallel.For(0, samples.Length, new ParallelOptions { MaxDegreeOfParallelism = threads }, i =>
        {
            if (PersonalSign.TryRecoverHash(samples[i].Hash, samples[i].Signature, out _, curve) != SignatureCheck.Valid)
                throw new InvalidOperationException("A sample signature did not verify.");
        });
        return samples.Length;
    }

    private static (byte[] Hash, byte[] Signature)[] Samples(int count)
    {
        var random = new Random(1);
        return Enumerable.Range(0, count).Select(_ =>
        {
            var message = new byte[200];
            random.NextBytes(message);
            var key = EthKey.FromSeed(message);
            var hash = new byte[32];
            PersonalSign.Hash(message, hash);
            return (hash, key.SignPersonal(message));
        }).ToArray();
    }
}
