namespace Pipeline.Marketplace.Sandbox;

/// <summary>
/// Why the sandbox refused a query or stopped it: wire names the API returns as a problem's <c>reason</c>. A refusal
/// happens before anything is read; a stop (timeout, out_of_memory, query_failed) ends a statement that had started.
/// </summary>
public static class SandboxReason
{
    public const string EmptyStatement = "empty_statement";
    public const string SqlTooLong = "sql_too_long";
    public const string SqlTooComplex = "sql_too_complex";
    public const string BadEncoding = "bad_encoding";
    public const string SyntaxError = "syntax_error";
    public const string NotSelect = "not_select";
    public const string MultipleStatements = "multiple_statements";
    public const string UnknownTable = "unknown_table";
    public const string TableFunction = "table_function";
    public const string FunctionNotAllowed = "function_not_allowed";
    public const string RecursiveQuery = "recursive_query";
    public const string ShadowsGrant = "shadows_grant";
    public const string UnsupportedSyntax = "unsupported_syntax";
    public const string UnsupportedType = "unsupported_type";
    public const string QueryFailed = "query_failed";
    public const string Timeout = "timeout";
    public const string OutOfMemory = "out_of_memory";
}

/// <summary>A query the sandbox refused or stopped: a reason code from <see cref="SandboxReason"/> and what to do.</summary>
public sealed class SandboxRefusedException(string reason, string message, Exception? inner = null) : Exception(message, inner)
{
    public string Reason { get; } = reason;
}
