namespace PumpFleet.EventStore.Audit;

/// <summary>
/// Who runs a command-line tool (silo <c>projections rebuild</c>, <c>verify</c>; dashboard <c>projections …</c>), for the
/// audit trail. The actor is <c>cli:&lt;name&gt;@&lt;host&gt;</c>, where the name is <c>--actor=&lt;name&gt;</c> when given (a
/// shared service account or <c>kubectl exec</c> runs as the container's user, so the person says who they are) and the
/// OS user otherwise. The OS user is always kept in the entry's detail: the claimed name is what the operator said,
/// the OS user is what the host knows.
/// </summary>
public sealed record OperatorIdentity(AuditActor Actor, string OsUser, string? Claimed)
{
    /// <summary>The option that names the person running the command.</summary>
    public const string ActorOption = "--actor=";

    /// <summary>Reads <c>--actor=</c> from <paramref name="args"/>. Throws <see cref="ArgumentException"/> with a message for the operator on a bad name.</summary>
    public static OperatorIdentity FromArguments(IEnumerable<string> args, string? osUser = null, string? host = null)
    {
        ArgumentNullException.ThrowIfNull(args);
        osUser ??= Environment.UserName;
        host ??= Environment.MachineName;
        var claimed = args.LastOrDefault(a => a.StartsWith(ActorOption, StringComparison.Ordinal))?[ActorOption.Length..];
        if (claimed is not null && (claimed.Length is 0 or > 64 || !claimed.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' or '@')))
        {
            throw new ArgumentException(
                $"{ActorOption}<name>: 1 to 64 letters, digits, '.', '-', '_' or '@' (got '{claimed}').", nameof(args));
        }

        return new OperatorIdentity(AuditActor.Operator($"cli:{claimed ?? osUser}@{host}"), osUser, claimed);
    }

    /// <summary>The detail of an audit entry for this operator, plus <paramref name="extra"/>.</summary>
    public Dictionary<string, string?> Detail(params (string Key, string? Value)[] extra)
    {
        var detail = new Dictionary<string, string?>(StringComparer.Ordinal) { ["via"] = "cli", ["osUser"] = OsUser };
        foreach (var (key, value) in extra)
        {
            detail[key] = value;
        }

        return detail;
    }
}
