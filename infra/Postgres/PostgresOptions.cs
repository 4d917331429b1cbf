namespace Pipeline.Infra.Postgres;

/// <summary>Where the event store lives. Bound from the "Postgres" section; PIPELINE_POSTGRES sets ConnectionString.</summary>
public sealed class PostgresOptions
{
    public const string Section = "Postgres";

    /// <summary>A server to use as is. Empty: run a local cluster under <see cref="DataDirectory"/>.</summary>
    public string? ConnectionString { get; set; }

    /// <summary>The local cluster's folder (PGDATA); empty: "postgres" inside the stack's data folder.</summary>
    public string? DataDirectory { get; set; }

    /// <summary>The local cluster's port on 127.0.0.1; not 5432, so a system server can run beside it.</summary>
    public int Port { get; set; } = 54329;

    public string Database { get; set; } = "depin";
}
