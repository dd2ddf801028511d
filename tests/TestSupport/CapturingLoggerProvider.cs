using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace PumpFleet.TestSupport;

/// <summary>Keeps every formatted log line (of every category and level) so a test can assert what an operator would read.</summary>
public sealed class CapturingLoggerProvider(LogLevel minimum = LogLevel.Trace, bool stamped = false) : ILoggerProvider
{
    private readonly ConcurrentQueue<string> _messages = new();

    public IReadOnlyCollection<string> Messages => _messages;

    /// <summary>A capture for a failure message: lines at <paramref name="minimum"/> and above, each with its UTC time, level and category.</summary>
    public static CapturingLoggerProvider Diagnostic(LogLevel minimum = LogLevel.Warning) => new(minimum, stamped: true);

    public ILogger CreateLogger(string categoryName) => new Logger(_messages, minimum, stamped ? categoryName : null);

    public void Dispose()
    {
    }

    private sealed class Logger(ConcurrentQueue<string> messages, LogLevel minimum, string? category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= minimum;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (logLevel < minimum)
            {
                return;
            }

            var text = formatter(state, exception);
            messages.Enqueue(category is null
                ? text
                : $"{DateTimeOffset.UtcNow:HH:mm:ss.fff} {logLevel} {category}: {text}{(exception is null ? "" : $" ({exception.GetType().Name}: {exception.Message})")}");
        }
    }
}
