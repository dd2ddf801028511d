using System.Text.RegularExpressions;

namespace PumpFleet.Architecture.Tests;

/// <summary>
/// No session state on the shared pool. The platform's pooled connections are handed from one borrower to the next
/// without Npgsql's session reset (<c>No Reset On Close</c>, EventStoreDataSource.Build: the reset was half of
/// PostgreSQL's transactions per message at 5,000 events/s, docs/benchmarks.md "The connection reset off"). So
/// whatever a borrower leaves in its session stays for the next one: a <c>LISTEN</c> keeps receiving a notification
/// per commit in someone else's hands (and holds the server's notification queue back while they do not read), a
/// session advisory lock stays held, a <c>SET</c> changes every later statement, a temporary table or a held cursor
/// lives on. Session state belongs on a connection of its own (<c>UnpooledConnections</c>: closing it ends the
/// session); everything on the pool is transaction-scoped (<c>SET LOCAL</c>, <c>set_config(…, true)</c>,
/// <c>pg_advisory_xact_lock</c>, <c>ON COMMIT DROP</c>). These rules find the statements that would break that in
/// src/ (C# string literals and migrations). Fix the code, never the rule: if a new use needs session state, open
/// its connection from <c>UnpooledConnections</c> (or turn the reset back on with
/// <c>EventStore:ResetPooledConnections</c> and measure what it costs).
/// </summary>
public sealed partial class SessionStateTests
{
    private static readonly List<(string File, string Text)> Sources =
        [.. RepositoryLayout.Sources("src", "*.cs", "*.sql").Select(f => (RepositoryLayout.Relative(f), Code(f)))];

    // A file that opens its connections from UnpooledConnections may keep session state on them.
    private static bool OwnsItsSessions((string File, string Text) s) =>
        s.File.EndsWith(".cs", StringComparison.Ordinal) && s.Text.Contains("UnpooledConnections", StringComparison.Ordinal);

    [Fact]
    public void Listen_IsOnlyOnUnpooledConnections()
    {
        var offenders = Sources.Where(s => Listen().IsMatch(s.Text) && !OwnsItsSessions(s)).Select(s => s.File).ToList();
        Assert.True(offenders.Count == 0,
            $"LISTEN on a pooled connection stays with its next borrower (the pool does not reset sessions): open the connection from UnpooledConnections. {string.Join(", ", offenders)}");
    }

    [Fact]
    public void TheListeners_AreFound()
    {
        // Guards the rule above against passing vacuously (a LISTEN written another way).
        var listeners = Sources.Where(s => Listen().IsMatch(s.Text)).Select(s => s.File).ToList();
        Assert.Contains("src/EventStore/Log/LogNotificationListener.cs", listeners);
        Assert.Contains("src/Gateway/Hubs/HubRegistryWatcher.cs", listeners);
        Assert.Contains("src/Gateway/Cli/MosquittoFilesCli.cs", listeners);
    }

    [Fact]
    public void AdvisoryLocks_AreTransactionScoped()
    {
        var offenders = Sources.Where(s => SessionAdvisoryLock().IsMatch(s.Text) && !OwnsItsSessions(s)).Select(s => s.File).ToList();
        Assert.True(offenders.Count == 0,
            $"A session advisory lock on a pooled connection stays held by its next borrower if it is not unlocked on every path: use pg_advisory_xact_lock (or an UnpooledConnections connection). {string.Join(", ", offenders)}");
        Assert.Contains(Sources, s => s.File == "src/EventStore/SchemaMigrator.cs" && s.Text.Contains("pg_advisory_xact_lock(", StringComparison.Ordinal));
    }

    [Fact]
    public void Settings_AreTransactionScoped()
    {
        var offenders = Sources
            .Where(s => !OwnsItsSessions(s) && (SessionSetConfig().IsMatch(s.Text)
                || (s.File.EndsWith(".sql", StringComparison.Ordinal) ? SqlSessionStatement() : LiteralSessionStatement()).IsMatch(s.Text)))
            .Select(s => s.File).ToList();
        Assert.True(offenders.Count == 0,
            $"SET / RESET / PREPARE / set_config(…, false) change the session, and so every later borrower of a pooled connection: use SET LOCAL or set_config(…, true). {string.Join(", ", offenders)}");
        // Guards against a vacuous pass: the transaction-scoped forms are there and are not matched.
        Assert.Contains(Sources, s => s.Text.Contains("\"SET LOCAL ", StringComparison.Ordinal));
        Assert.Contains(Sources, s => s.Text.Contains("set_config('pumpfleet.log_notify', 'after-commit', true)", StringComparison.Ordinal));
    }

    [Fact]
    public void TemporaryTables_AreDroppedAtCommit()
    {
        var offenders = new List<string>();
        var found = 0;
        foreach (var (file, text) in Sources)
        {
            foreach (Match m in TemporaryTable().Matches(text))
            {
                found++;
                if (!m.Value.Contains("ON COMMIT DROP", StringComparison.OrdinalIgnoreCase))
                {
                    offenders.Add(file);
                }
            }
        }

        Assert.True(offenders.Count == 0,
            $"A temporary table without ON COMMIT DROP outlives its transaction on the pooled connection (and the next CREATE of it there fails): {string.Join(", ", offenders)}");
        Assert.True(found >= 2, $"Only {found} temporary tables found (HubImport and StreamImport have one each).");
    }

    [Fact]
    public void Cursors_DoNotOutliveTheirTransaction()
    {
        var offenders = Sources.Where(s => HoldCursor().IsMatch(s.Text)).Select(s => s.File).ToList();
        Assert.True(offenders.Count == 0, $"A cursor WITH HOLD outlives its transaction on the pooled connection: {string.Join(", ", offenders)}");
    }

    // The file's text without SQL line comments (migrations explain LISTEN and SET in prose); C# comments are kept,
    // and the C# rules match only string literals.
    private static string Code(string file)
    {
        var text = File.ReadAllText(file);
        return file.EndsWith(".sql", StringComparison.Ordinal) ? SqlComment().Replace(text, "") : text;
    }

    [GeneratedRegex(@"--[^\n]*", RegexOptions.CultureInvariant)]
    private static partial Regex SqlComment();

    // A C# string literal (plain, interpolated or raw) or a SQL statement that starts with LISTEN (upper case, as the
    // platform writes SQL: an English "Listen …" in a message is not a statement).
    [GeneratedRegex(@"(""\s*|(^|;)\s*)LISTEN\s", RegexOptions.CultureInvariant | RegexOptions.Multiline)]
    private static partial Regex Listen();

    [GeneratedRegex(@"\bpg_(try_)?advisory_lock(_shared)?\s*\(", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase)]
    private static partial Regex SessionAdvisoryLock();

    // set_config(name, value, false): the third argument false means "for the session".
    [GeneratedRegex(@"\bset_config\s*\([^;]*?,\s*false\s*\)", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase)]
    private static partial Regex SessionSetConfig();

    // A C# string literal, or a statement after a ';' in one, that is a session SET (SET name = / TO …, SET SESSION …,
    // SET ROLE …; not SET LOCAL), a RESET or a PREPARE, in upper case as the platform writes SQL ("Set the …" in a
    // message is English).
    [GeneratedRegex(@"(""|;)\s*(SET\s+(?!LOCAL\b)((SESSION|ROLE)\b|[A-Za-z_][\w.]*\s*(=|TO\b))|RESET\s+[A-Za-z_]|PREPARE\s+\w+\s*(AS\b|\())", RegexOptions.CultureInvariant)]
    private static partial Regex LiteralSessionStatement();

    // The same as a migration's statement (at the file's start or after a ';'), in any case. A plain SET inside a
    // migration's transaction outlives its commit. (UPDATE … SET and a function's SET clause follow other words.)
    [GeneratedRegex(@"(\A|;)\s*(SET\s+(?!LOCAL\b)((SESSION|ROLE)\b|[A-Za-z_][\w.]*\s*(=|TO\b))|RESET\s+[A-Za-z_]|PREPARE\s+\w+\s*(AS\b|\())", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase)]
    private static partial Regex SqlSessionStatement();

    // CREATE TEMP TABLE … up to the end of its statement or of the string literal.
    [GeneratedRegex(@"CREATE\s+((GLOBAL|LOCAL)\s+)?TEMP(ORARY)?\s+TABLE[\s\S]*?(;|""|\z)", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase)]
    private static partial Regex TemporaryTable();

    [GeneratedRegex(@"\bWITH\s+HOLD\b", RegexOptions.CultureInvariant | RegexOptions.IgnoreCase)]
    private static partial Regex HoldCursor();
}
