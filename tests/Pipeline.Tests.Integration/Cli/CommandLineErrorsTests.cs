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
}
