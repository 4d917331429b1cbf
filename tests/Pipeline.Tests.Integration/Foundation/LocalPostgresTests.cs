using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Pipeline.Infra.Development;
using Pipeline.Infra.Postgres;

namespace Pipeline.Tests.Integration.Foundation;

/// <summary>The local cluster `depin up` runs: created once, reused, and clear about what stops it.</summary>
[Trait("Category", "Integration")]
public sealed class LocalPostgresTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("depin-pg-").FullName;

    [Fact]
    public async Task Start_OnAFreshFolder_CreatesTheClusterThenReusesItWhileRunning()
    {
        var options = new PostgresOptions { Port = TestHost.FreePort() };
        var first = new LocalPostgres(options, Path.Combine(_folder, "postgres"), NullLogger.Instance);
        await first.StartAsync(CancellationToken.None);
        try
        {
            Assert.True(first.StartedHere);
            var second = new LocalPostgres(options, Path.Combine(_folder, "postgres"), NullLogger.Instance);
            await second.StartAsync(CancellationToken.None);
            Assert.False(second.StartedHere);

            await using var connection = new NpgsqlConnection(second.ConnectionString);
            await connection.OpenAsync();
            Assert.Equal("depin", connection.Database);
        }
        finally
        {
            await first.StopAsync();
        }
    }

    [Fact]
    public async Task Start_WithTheCurrentPortTaken_SaysWhichPortAndWhatToDo()
    {
        using var squatter = new TcpListener(IPAddress.Loopback, 0);
        squatter.Start();
        var port = ((IPEndPoint)squatter.LocalEndpoint).Port;
        var postgres = new LocalPostgres(new PostgresOptions { Port = port }, Path.Combine(_folder, "postgres"), NullLogger.Instance);

        var error = await Assert.ThrowsAsync<InvalidOperationException>(() => postgres.StartAsync(CancellationToken.None));
        Assert.Contains($"Port {port}", error.Message);
        Assert.Contains("PIPELINE_POSTGRES_PORT", error.Message);
    }

    [Fact]
    public async Task Start_WithAStalePidFile_RemovesItAndStarts()
    {
        var options = new PostgresOptions { Port = TestHost.FreePort() };
        var folder = Path.Combine(_folder, "postgres");
        var postgres = new LocalPostgres(options, folder, NullLogger.Instance);
        await postgres.StartAsync(CancellationToken.None);
        await postgres.StopAsync();

        // What a killed server leaves behind: a pid file naming a process that no longer exists.
        var pidFile = Path.Combine(folder, "postmaster.pid");
        await File.WriteAllTextAsync(pidFile, $"{int.MaxValue - 1}\n{folder}\n");
        await new LocalPostgres(options, folder, NullLogger.Instance).StartAsync(CancellationToken.None);
        try
        {
            Assert.NotEqual($"{int.MaxValue - 1}", File.ReadLines(pidFile).First());
        }
        finally
        {
            await postgres.StopIfRunningAsync(CancellationToken.None);
        }
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_folder, recursive: true);
        }
        catch (IOException)
        {
            // A server that failed to stop keeps files open; the temp folder is cleaned by the system.
        }
    }
}
