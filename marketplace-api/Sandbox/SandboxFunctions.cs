namespace Pipeline.Marketplace.Sandbox;

/// <summary>
/// The scalar, aggregate and window functions a buyer's SQL may call: pure computations over the values of the grant's
/// rows. Anything not listed is refused — in particular everything that reads files, settings, the catalog or the
/// environment (<c>read_*</c>, <c>glob</c>, <c>getenv</c>, <c>current_setting</c>, <c>duckdb_*</c>, <c>query</c>, …) —
/// so a function DuckDB adds in a later version stays out until someone reads it and lists it here. Left out too: the
/// functions that multiply a string's size from a small argument (<c>repeat</c>, <c>lpad</c>, <c>rpad</c>,
/// <c>replace</c>, <c>regexp_replace</c>, <c>printf</c>/<c>format</c> widths), because DuckDB allocates scalar strings
/// outside <c>memory_limit</c>: <c>repeat('x', 1e9)</c> takes a gigabyte while the limit says 128 MB.
/// </summary>
public static class SandboxFunctions
{
    /// <summary>Functions whose result is as long as all their arguments together; their arguments are counted (see <see cref="SandboxLimits.MaxConcatenated"/>).</summary>
    public static IReadOnlySet<string> Concatenating { get; } = new HashSet<string>(StringComparer.Ordinal) { "||", "concat", "concat_ws" };

    /// <summary>The allowed aggregates: a query calling one outside a subquery folds rows together.</summary>
    public static IReadOnlySet<string> Aggregates { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        "count", "count_star", "sum", "avg", "mean", "min", "max", "median", "mode", "quantile", "quantile_cont", "quantile_disc",
        "approx_count_distinct", "approx_quantile", "stddev", "stddev_samp", "stddev_pop", "variance", "var_samp", "var_pop",
        "corr", "covar_pop", "covar_samp", "regr_slope", "regr_intercept", "regr_r2", "regr_count", "first", "last", "any_value",
        "arg_min", "arg_max", "argmin", "argmax", "min_by", "max_by", "bool_and", "bool_or",
        "fsum", "sumkahan", "product", "entropy", "kurtosis", "skewness", "count_if", "countif",
        // Left out: aggregates whose one value holds every row they fold (string_agg, group_concat, list, array_agg,
        // histogram) — the whole slice read as one row is charged as one row (issue 13).
    };

    /// <summary>
    /// Aggregates that DuckDB also has in a form returning many values as one list — <c>max(x, n)</c>,
    /// <c>arg_max(a, v, n)</c>, <c>quantile_disc(x, [fractions])</c> — allowed only in their one-value form: this many
    /// arguments at most, and for the quantiles a constant fraction. A list of n values is n rows charged as one.
    /// </summary>
    public static IReadOnlyDictionary<string, int> MaxArguments { get; } = new Dictionary<string, int>(StringComparer.Ordinal)
    {
        ["min"] = 1, ["max"] = 1, ["arg_min"] = 2, ["arg_max"] = 2, ["argmin"] = 2, ["argmax"] = 2, ["min_by"] = 2, ["max_by"] = 2,
    };

    public static IReadOnlySet<string> Quantiles { get; } = new HashSet<string>(StringComparer.Ordinal) { "quantile", "quantile_cont", "quantile_disc", "approx_quantile" };

    public static IReadOnlySet<string> Allowed { get; } = new HashSet<string>(Aggregates, StringComparer.Ordinal)
    {
        // Operators, as DuckDB's parser names them.
        "+", "-", "*", "/", "//", "%", "**", "^", "||", "~~", "!~~", "~~*", "!~~*", "~~~", "!~~~", "&", "|", "<<", ">>", "@",
        // Window functions.
        "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag", "lead", "first_value", "last_value", "nth_value",
        // Numbers.
        "abs", "ceil", "ceiling", "floor", "round", "trunc", "sqrt", "cbrt", "exp", "ln", "log", "log2", "log10", "pow", "power",
        "sign", "greatest", "least", "mod", "pi", "radians", "degrees", "sin", "cos", "tan", "asin", "acos", "atan", "atan2",
        "isnan", "isinf", "isfinite", "even", "gcd", "lcm", "random", "bit_count", "round_even", "xor",
        // Text.
        "lower", "upper", "lcase", "ucase", "length", "len", "strlen", "concat", "concat_ws", "substring", "substr", "left", "right",
        "trim", "ltrim", "rtrim", "starts_with", "ends_with", "contains", "prefix", "suffix", "position", "strpos",
        "instr", "split_part", "string_split", "str_split", "regexp_matches", "regexp_extract", "regexp_full_match",
        "reverse", "md5", "sha256", "hash", "levenshtein", "jaro_winkler_similarity",
        "like_escape", "ilike_escape", "ascii", "chr", "to_hex", "initcap",
        // Times.
        "date_trunc", "datetrunc", "date_part", "datepart", "extract", "date_diff", "datediff", "date_sub", "datesub", "date_add",
        "time_bucket", "epoch", "epoch_ms", "epoch_us", "to_timestamp", "make_date", "make_time", "make_timestamp", "make_timestamptz",
        "strftime", "strptime", "try_strptime", "year", "month", "day", "hour", "minute", "second", "millisecond", "microsecond",
        "dayofweek", "dayofmonth", "dayofyear", "week", "weekofyear", "weekday", "isodow", "isoyear", "yearweek", "quarter", "last_day",
        "age", "to_years", "to_months", "to_weeks", "to_days", "to_hours", "to_minutes", "to_seconds", "to_milliseconds", "to_microseconds",
        "now", "get_current_timestamp", "current_date", "today",
        // Lists, structs and conditionals.
        "list_value", "list_pack", "struct_pack", "row", "struct_extract", "array_extract", "list_extract", "list_element", "list_slice",
        "array_slice", "array_length", "list_transform", "array_transform", "apply", "list_filter", "array_filter", "filter",
        "list_reduce", "array_reduce", "reduce", "list_aggregate", "list_aggr", "list_sort", "array_sort", "list_distinct",
        "list_contains", "list_has", "array_contains", "array_has", "list_sum", "list_avg", "list_min", "list_max", "list_count",
        "unnest", "flatten", "cardinality", "element_at", "map_extract", "ifnull", "nullif", "if", "iff", "typeof", "to_json", "json_extract",
        "json_extract_string", "json_object", "json_array",
    };
}
