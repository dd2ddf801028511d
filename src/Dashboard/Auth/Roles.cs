namespace PumpFleet.Dashboard.Auth;

/// <summary>Roles and the policies built on them: each role includes the ones below it.</summary>
public static class Roles
{
    /// <summary>Reads everything.</summary>
    public const string Viewer = "viewer";

    /// <summary>Viewer plus acknowledging and resolving anomalies.</summary>
    public const string Analyst = "analyst";

    /// <summary>Analyst plus operations (projection rebuilds, the Orleans dashboard).</summary>
    public const string Admin = "admin";

    /// <summary>Known roles, lowest first.</summary>
    public static readonly IReadOnlyList<string> All = [Viewer, Analyst, Admin];

    /// <summary>Policy: any signed-in role.</summary>
    public const string CanView = "pumpfleet-view";

    /// <summary>Policy: analyst or admin.</summary>
    public const string CanTriage = "pumpfleet-triage";

    /// <summary>Policy: admin.</summary>
    public const string CanAdminister = "pumpfleet-admin";

    /// <summary>The roles a role implies (itself and every lower one), as claims.</summary>
    public static IEnumerable<string> Implied(string role)
    {
        var i = All.ToList().IndexOf(role);
        return i < 0 ? [] : All.Take(i + 1);
    }
}
