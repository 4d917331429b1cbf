using Microsoft.Extensions.Configuration;
using Pipeline.Cli.Hosting;

namespace Pipeline.Tests.Integration.Hosting;

/// <summary>
/// Issue 16: a host reads its configuration once. A configuration file that reloads on change has the host watch its
/// working directory and every folder under it — under `depin up`, PostgreSQL's and the lake's files, whose every write
/// woke the watcher's thread (1.5 µs per reading of the processors' CPU in bench streams).
/// </summary>
[Collection(StackCollection.Name)]
[Trait("Category", "Integration")]
public sealed class HostConfigurationTests(StackFixture fixture)
{
    [Fact]
    public async Task NoConfigurationFileOfAHost_ReloadsOnChange_Issue16()
    {
        await using var app = PipelineHost.Build(fixture.Settings, Roles.All);
        var files = ((IConfigurationRoot)app.Configuration).Providers.OfType<FileConfigurationProvider>().ToList();
        // The defaults still look for appsettings.json (optional, absent here): read once, never watched.
        Assert.Contains(files, f => f.Source.Path == "appsettings.json");
        Assert.All(files, f => Assert.False(f.Source.ReloadOnChange, $"{f.Source.Path} reloads on change."));
    }
}
