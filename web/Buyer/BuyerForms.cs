namespace Pipeline.Web.Buyer;

public sealed class SignInForm
{
    public string? Key { get; set; }
}

public sealed class BuyForm
{
    public string? Dataset { get; set; }
    public DateTime? From { get; set; }
    public DateTime? Until { get; set; }
    public long? RowQuota { get; set; }
    public DateTime? ExpiresAt { get; set; }
}

public sealed class QueryForm
{
    public string? Grant { get; set; }
    public string? Sql { get; set; }
}

public sealed class ExportForm
{
    public string? Grant { get; set; }
    public int? Shards { get; set; }
}
