namespace PumpFleet.Dashboard.Hosting;

/// <summary>Log messages of the dashboard's composition.</summary>
internal static partial class DashboardLog
{
    [LoggerMessage(Level = LogLevel.Warning, Message = "The Orleans dashboard is not mapped: {Reason}")]
    public static partial void OrleansDashboardNotMapped(ILogger logger, string reason);
}
