using System.CommandLine;
using Pipeline.Cli.Hosting;
using Pipeline.Infra.Hosting;
using Pipeline.Marketplace;
using Pipeline.Marketplace.Accounts;

namespace Pipeline.Cli.Commands;

/// <summary>`depin operator-key --new`: a new marketplace operator key, for whoever lost the one `depin up` printed.</summary>
public static class OperatorKeyCommand
{
    public static Command Create()
    {
        var arguments = new StackArguments();
        var replace = new Option<bool>("--new") { Description = "Make a new operator key and print it; the old one stops working at once (a running API reads the key's hash on every request)." };
        var command = new Command("operator-key", "The marketplace's operator key: where its hash is kept, or with --new a new key, printed once.") { replace };
        arguments.AddTo(command);
        command.SetAction(result =>
        {
            var configuration = PipelineConfiguration.Build(arguments.Values(result));
            var data = configuration.GetSection(DataOptions.Section).Get<DataOptions>() ?? new();
            var market = configuration.GetSection(MarketplaceOptions.Section).Get<MarketplaceOptions>() ?? new();
            var key = new OperatorKey(market.ResolveOperatorKeyFile(data.FullPath));
            if (!result.GetValue(replace))
            {
                Console.WriteLine(File.Exists(key.Path)
                    ? $"The operator key's hash is in {key.Path}; the key was printed when it was made. Run with --new for another one."
                    : $"No operator key yet: `depin up` makes one at its first start, or run with --new.");
                return 0;
            }
            // Before any `depin up` there is no file, nor its folder, to delete.
            if (File.Exists(key.Path)) File.Delete(key.Path);
            Console.WriteLine(key.CreateIfMissing());
            return 0;
        });
        return command;
    }
}
