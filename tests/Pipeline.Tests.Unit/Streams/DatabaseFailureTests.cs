using System.Net.Sockets;
using System.Text;
using Marten.Exceptions;
using Npgsql;
using Pipeline.Infra.Postgres;

namespace Pipeline.Tests.Unit.Streams;

/// <summary>
/// Which failures the processors wait out and which they never retry (issue 10): a refusal of what a batch carries
/// repeats forever, so it must not be taken for an outage, whether Npgsql throws it or Marten wraps it.
/// </summary>
public sealed class DatabaseFailureTests
{
    private static PostgresException Server(string sqlState) => new($"server says {sqlState}", "ERROR", "ERROR", sqlState);

    private static Exception WrappedByMarten(Exception inner) => new MartenCommandException(new NpgsqlCommand("select mt_quick_append_events(…)"), inner);

    [Theory]
    [InlineData("22P05")] // jsonb: unsupported Unicode escape sequence (\u0000)
    [InlineData("22021")] // text: invalid byte sequence for encoding UTF8: 0x00
    [InlineData("22P02")] // invalid text representation (an escaped lone surrogate in jsonb)
    [InlineData("22003")] // numeric value out of range
    [InlineData("23505")] // unique violation
    [InlineData("23514")] // check violation
    [InlineData("54000")] // program limit exceeded (an index row too large)
    public void DataErrors_AsNpgsqlThrowsThemOrMartenWrapsThem_AreContent_NeverAnOutage_Issue10(string sqlState)
    {
        Assert.Equal(FailureKind.Content, DatabaseFailure.Classify(Server(sqlState)));
        Assert.Equal(FailureKind.Content, DatabaseFailure.Classify(WrappedByMarten(Server(sqlState))));
        Assert.Equal(FailureKind.Content, DatabaseFailure.Classify(new AggregateException(WrappedByMarten(Server(sqlState)))));
    }

    [Fact]
    public void AValueWithNoUtf8Form_IsContent()
    {
        var unencodable = new EncoderFallbackException("Unable to translate Unicode character \\uD800");
        Assert.Equal(FailureKind.Content, DatabaseFailure.Classify(WrappedByMarten(unencodable)));
    }

    [Theory]
    [InlineData("08006")] // connection failure
    [InlineData("08001")] // cannot establish a connection
    [InlineData("57P01")] // admin shutdown
    [InlineData("57P02")] // crash shutdown
    [InlineData("57P03")] // cannot connect now (starting up)
    [InlineData("53300")] // too many connections
    [InlineData("53100")] // disk full
    [InlineData("40001")] // serialization failure
    [InlineData("40P01")] // deadlock detected
    [InlineData("42P01")] // a table missing while a migration runs: no message can cause it
    public void ServerStatesNoContentCanCause_AreOutages(string sqlState)
    {
        Assert.Equal(FailureKind.Outage, DatabaseFailure.Classify(Server(sqlState)));
        Assert.Equal(FailureKind.Outage, DatabaseFailure.Classify(WrappedByMarten(Server(sqlState))));
    }

    [Fact]
    public void ConnectionLevelFailures_AreOutages()
    {
        Assert.Equal(FailureKind.Outage, DatabaseFailure.Classify(new NpgsqlException("Failed to connect to 127.0.0.1:54329", new SocketException((int)SocketError.ConnectionRefused))));
        Assert.Equal(FailureKind.Outage, DatabaseFailure.Classify(new SocketException((int)SocketError.ConnectionReset)));
        Assert.Equal(FailureKind.Outage, DatabaseFailure.Classify(WrappedByMarten(new TimeoutException("Timeout during reading attempt"))));
        Assert.Equal(FailureKind.Outage, DatabaseFailure.Classify(new NpgsqlException("Exception while reading from stream", new IOException("Unable to read data"))));
    }

    [Fact]
    public void EverythingElse_IsNotTheDatabase_AndStopsTheHost()
    {
        Assert.Equal(FailureKind.NotDatabase, DatabaseFailure.Classify(new InvalidOperationException("a bug")));
        Assert.Equal(FailureKind.NotDatabase, DatabaseFailure.Classify(new NullReferenceException()));
    }

    [Fact]
    public void Describe_NamesTheSqlStateAndWhatPostgresSaid_EvenInsideMartensWrapper()
    {
        Assert.Equal("SQLSTATE 23514: server says 23514", DatabaseFailure.Describe(WrappedByMarten(Server("23514"))));
    }
}
