using System.CommandLine;
using Pipeline.Cli.Commands;

namespace Pipeline.Tests.Integration.Cli;

/// <summary>Invalid option values are explained in words, never with .NET type names (issue 11).</summary>
public sealed class CommandLineErrorsTests
{
    private static readonly RootCommand Root = new() { UpCommand.Create(), SimulateCommand.Create(), LakeCommand.Create() };

    [Theory]
    [InlineData("up --api-port abc", "--api-port takes a whole number; 'abc' is not one.")]
    [InlineData("simulate --seed x", "--seed takes a whole number; 'x' is not one.")]
    [InlineData("simulate --rate fast", "--rate takes a number such as 0.5; 'fast' is not one.")]
    [InlineData("simulate --misbehave-rate 5%", "--misbehave-rate takes a number such as 0.5; '5%' is not one.")]
    public void InvalidNumber_IsDescribedInWords(string commandLine, string expected)
    {
        var parse = Root.Parse(commandLine);

        Assert.Equal(expected, CommandLineErrors.Describe(Assert.Single(parse.Errors)));
    }

    [Theory]
    [InlineData("simulate --transport pigeon", "pigeon")]
    [InlineData("lake query \"SELECT 1\" --format xml", "xml")]
    [InlineData("lake query \"SELECT 1\" --limit 0", "--limit")]
    public void InvalidChoice_NamesTheChoices_WithoutTypeNames(string commandLine, string mentioned)
    {
        var message = CommandLineErrors.Describe(Assert.Single(Root.Parse(commandLine).Errors));

        Assert.Contains(mentioned, message);
        Assert.DoesNotContain("System.", message);
        Assert.DoesNotContain("Pipeline.", message);
    }

    [Fact]
    public void DatabaseRestartWrappedByMarten_Issue16_IsOneLineAndExitCodeTwo()
    {
        // What a stage met in depin chaos: its schema migration at start-up cut by PostgreSQL's restart (57P01),
        // wrapped by Marten; it used to escape Main and end the process with SIGABRT (134).
        var restart = new Npgsql.PostgresException("terminating connection due to administrator command", "FATAL", "FATAL", "57P01");
        var wrapped = new Marten.Exceptions.MartenSchemaException("All Configured Changes", "drop index if exists depin.mt_events_data_sold_device;", restart);
        var error = new StringWriter();

        Assert.True(CommandLineErrors.IsUserError(wrapped));
        Assert.Equal(CommandLineErrors.ExitCode, CommandLineErrors.Report(wrapped, error));
        Assert.Equal("error: PostgreSQL cannot serve now (SQLSTATE 57P01: terminating connection due to administrator command); start again once it can.", error.ToString().TrimEnd());
    }

    [Fact]
    public void RefusedHttpConnection_IsReportedAsItself_NotAsTheDatabase()
    {
        // A socket refused inside an HttpRequestException (the registry API not running) is not PostgreSQL's outage.
        var refused = new HttpRequestException("Connection refused (127.0.0.1:5080)", new System.Net.Sockets.SocketException((int)System.Net.Sockets.SocketError.ConnectionRefused));
        var error = new StringWriter();

        CommandLineErrors.Report(refused, error);

        Assert.Equal("error: Connection refused (127.0.0.1:5080)", error.ToString().TrimEnd());
    }

    [Fact]
    public void DefectOutsideTheDatabase_IsNotAUserError()
    {
        Assert.False(CommandLineErrors.IsUserError(new Marten.Exceptions.MartenSchemaException("All Configured Changes", "select 1;", new NullReferenceException())));
    }
}
