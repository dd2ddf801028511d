namespace PumpFleet.Gateway.Hosting;

/// <summary>Hub authentication (section <c>Gateway:Hubs</c>).</summary>
public sealed class HubAuthOptions
{
    /// <summary>Configuration section.</summary>
    public const string SectionName = "Gateway:Hubs";

    /// <summary>
    /// Dev fleet only: an unknown hub whose password is lowercase-hex HMAC-SHA256(key = this, message = hubId)
    /// is accepted and provisioned. Refused at start outside the Development environment. Default: none (off).
    /// </summary>
    public string? DevFleetSecret { get; set; }

    /// <summary>
    /// Dev only: pair an unpaired pump with the first hub that sends for it. Anyone with a hub identity can then
    /// claim any new serial. Refused at start outside the Development environment. Default: false.
    /// </summary>
    public bool AutoPairOnFirstBatch { get; set; }

    /// <summary>PBKDF2-SHA256 iterations for new secret hashes (old hashes keep theirs). Default: 100000.</summary>
    public int Pbkdf2Iterations { get; set; } = 100_000;

    /// <summary>
    /// PBKDF2-SHA512 iterations of the hub's credential in mosquitto's <c>$7$</c> form, stored next to ours so
    /// <c>hubs mosquitto-files</c> can write an external mosquitto's password file (docs/security.md). mosquitto checks
    /// every CONNECT on its single thread, so this is lower than <see cref="Pbkdf2Iterations"/>; generated secrets
    /// carry 256 random bits, which no iteration count is needed to protect. 0: store none (embedded-only fleets).
    /// Default: 1000.
    /// </summary>
    public int BrokerHashIterations { get; set; } = 1000;

    /// <summary>
    /// How often each gateway re-reads the registry for the hubs connected to it, in case a change notification
    /// (PostgreSQL LISTEN/NOTIFY) was missed. Default: 30 s.
    /// </summary>
    public TimeSpan RegistryRecheckInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long a password this instance verified is remembered (as a keyed fast hash, sliding on every use): such
    /// a hub reconnects without PBKDF2 and without waiting for the verification budget, so a wrong-password flood
    /// does not keep it out. The registry row is still read on every connect, so revocation and rotation apply at
    /// once. 0 turns the fast path off. Default: 24 h.
    /// </summary>
    public TimeSpan VerifiedCacheTtl { get; set; } = TimeSpan.FromHours(24);

    /// <summary>
    /// Unproven credential checks (a password this instance has not verified before) that may fail per second,
    /// across all hub ids and addresses: each takes a token before the registry read and PBKDF2, a success gives it
    /// back. Over the budget an attempt is answered <c>ServerBusy</c> at once. Default: 5 a second.
    /// </summary>
    public double VerificationBudgetPerSecond { get; set; } = 5;

    /// <summary>Burst of the verification budget (also the most unproven checks in flight at once). Default: 20.</summary>
    public double VerificationBudgetBurst { get; set; } = 20;

    /// <summary>PBKDF2 verifications running at once (a bounded pool: a password flood cannot take every core). Default: half the processors, at least 1.</summary>
    public int HashConcurrency { get; set; } = Math.Max(1, Environment.ProcessorCount / 2);

    /// <summary>Longest wait for a hashing slot before the connection is refused as busy. Default: 5 s.</summary>
    public TimeSpan HashWait { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Backoff after a failed login of a hub id (and, past <see cref="AddressFailureAllowance"/>, of a remote address); doubles per failure. Default: 1 s.</summary>
    public TimeSpan FailureBackoff { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Longest backoff. Default: 60 s.</summary>
    public TimeSpan FailureBackoffMax { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>Failed logins in a row from one remote address before it is backed off too (hubs may share a NAT address). Default: 10.</summary>
    public int AddressFailureAllowance { get; set; } = 10;
}
