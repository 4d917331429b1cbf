using Confluent.Kafka;
using Microsoft.Extensions.Logging;

namespace Pipeline.Infra.Kafka;

/// <summary>Maps librdkafka's syslog levels onto ILogger levels, so client logs join the structured log.</summary>
public static class KafkaLog
{
    public static LogLevel Level(SyslogLevel level) => level switch
    {
        SyslogLevel.Emergency or SyslogLevel.Alert or SyslogLevel.Critical => LogLevel.Critical,
        SyslogLevel.Error => LogLevel.Error,
        SyslogLevel.Warning => LogLevel.Warning,
        SyslogLevel.Notice or SyslogLevel.Info => LogLevel.Information,
        _ => LogLevel.Debug,
    };
}
