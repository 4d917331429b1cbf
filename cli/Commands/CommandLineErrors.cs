using System.CommandLine;
using System.CommandLine.Completions;
using System.CommandLine.Parsing;
using System.Globalization;

using Pipeline.Infra.Postgres;

namespace Pipeline.Cli.Commands;

/// <summary>
/// What a person sees when a command cannot run: one line per problem on stderr, saying what to do, and exit code 2 —
/// never a stack trace or a .NET type name for a mistake in the command line or the environment.
/// </summary>
public static class CommandLineErrors
{
    public const int ExitCode = 2;

    public static int ReportParseErrors(ParseResult parse)
    {
        var help = $"{CommandPath(parse.CommandResult)} --help";
        foreach (var error in parse.Errors) Console.Error.WriteLine($"error: {Describe(error)} See {help}.");
        return ExitCode;
    }

    /// <summary>An option value in words: "--seed takes a whole number; 'x' is not one", instead of the parser's type names.</summary>
    public static string Describe(ParseError error)
    {
        var option = error.SymbolResult switch
        {
            OptionResult o => o.Option,
            ArgumentResult { Parent: OptionResult o } => o.Option,
            _ => null,
        };
        var token = error.SymbolResult?.Tokens.Count == 1 ? error.SymbolResult.Tokens[0].Value : null;
        if (option is null || token is null) return OneLine(error.Message);
        var type = Nullable.GetUnderlyingType(option.ValueType) ?? option.ValueType;
        // Options that accept only some words list them as their completions.
        var choices = option.GetCompletions(CompletionContext.Empty).Select(c => c.Label).ToList();
        var expected = type switch
        {
            _ when type == typeof(string) && choices.Count > 0 => choices.Contains(token, StringComparer.Ordinal) ? null : "one of " + string.Join(", ", choices),
            _ when type == typeof(int) || type == typeof(long) => long.TryParse(token, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _) ? null : "a whole number",
            _ when type == typeof(double) => double.TryParse(token, NumberStyles.Float, CultureInfo.InvariantCulture, out _) ? null : "a number such as 0.5",
            _ when type == typeof(bool) => bool.TryParse(token, out _) ? null : "true or false",
            { IsEnum: true } => Enum.TryParse(type, token, ignoreCase: true, out _) ? null : "one of " + string.Join(", ", Enum.GetNames(type).Select(n => n.ToLowerInvariant())),
            _ => null,
        };
        return expected is null ? OneLine(error.Message) : $"{option.Name} takes {expected}; '{token}' is not one.";
    }

    /// <summary>
    /// Failures a person can act on — the environment, the servers, the data folder, what they asked for — as opposed to
    /// defects in depin itself, which keep their stack trace.
    /// </summary>
    public static bool IsUserError(Exception e) => e is InvalidOperationException or IOException or UnauthorizedAccessException
        or FormatException or ArgumentException or TimeoutException or HttpRequestException or DllNotFoundException
        or OperationCanceledException or Npgsql.NpgsqlException or Confluent.Kafka.KafkaException or DuckDB.NET.Data.DuckDBException
        || IsDatabaseOutage(e);

    public static int Report(Exception e, TextWriter? error = null)
    {
        if (e is OperationCanceledException) return 130;
        (error ?? Console.Error).WriteLine($"error: {(IsDatabaseOutage(e) ? $"PostgreSQL cannot serve now ({DatabaseFailure.Describe(e)}); start again once it can." : OneLine(e.Message))}");
        return ExitCode;
    }

    /// <summary>
    /// PostgreSQL down, starting or stopping, as Marten wraps it (a schema migration at start-up that met a restart):
    /// uncaught, it would end the process with SIGABRT and a page of DDL instead of a line and exit code 2. Only an
    /// Npgsql error inside counts: a refused HTTP connection (the registry API not running) is not the database.
    /// </summary>
    private static bool IsDatabaseOutage(Exception e) =>
        e is not Npgsql.NpgsqlException && HasNpgsqlInside(e) && DatabaseFailure.Classify(e) == FailureKind.Outage;

    private static bool HasNpgsqlInside(Exception e)
    {
        for (var inner = e.InnerException; inner is not null; inner = inner.InnerException)
            if (inner is Npgsql.NpgsqlException) return true;
        return false;
    }

    private static string OneLine(string text) => string.Join(' ', text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    private static string CommandPath(CommandResult result)
    {
        var names = new List<string>();
        for (SymbolResult? r = result; r is not null; r = r.Parent)
            if (r is CommandResult c) names.Insert(0, c.Command is RootCommand ? "depin" : c.Command.Name);
        return string.Join(' ', names);
    }
}
