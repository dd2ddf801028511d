using System.Net;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace PumpFleet.Gateway.Hosting;

/// <summary>
/// Checks <see cref="MqttGatewayOptions"/> at start-up: ranges, the rules between fields, and what the environment
/// allows (registered with <c>ValidateOnStart</c>).
/// </summary>
public sealed partial class MqttGatewayOptionsValidator(IHostEnvironment environment) : IValidateOptions<MqttGatewayOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, MqttGatewayOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        var errors = new List<string>();
        if (o.Port is < 1 or > 65535)
        {
            errors.Add($"Gateway:Mqtt:Port must be between 1 and 65535, not {o.Port}.");
        }

        if (string.IsNullOrWhiteSpace(o.BindAddress))
        {
            errors.Add("Gateway:Mqtt:BindAddress is required.");
        }

        if (o.TlsPort is < 1 or > 65535)
        {
            errors.Add($"Gateway:Mqtt:TlsPort must be between 1 and 65535, not {o.TlsPort}.");
        }

        if (o.MaxInFlight is < 1 or > 65535)
        {
            errors.Add($"Gateway:Mqtt:MaxInFlight must be between 1 and 65535, not {o.MaxInFlight}.");
        }

        if (o.InFlightWait < TimeSpan.FromMilliseconds(100) || o.InFlightWait > TimeSpan.FromMinutes(10))
        {
            errors.Add($"Gateway:Mqtt:InFlightWait must be between 100 ms and 10 min, not {o.InFlightWait}.");
        }

        if (o.IngestTimeout < TimeSpan.FromSeconds(1) || o.IngestTimeout > TimeSpan.FromMinutes(10))
        {
            errors.Add($"Gateway:Mqtt:IngestTimeout must be between 1 s and 10 min, not {o.IngestTimeout}.");
        }

        if (o.GrainCallAttemptTimeout < TimeSpan.FromMilliseconds(500) || o.GrainCallAttemptTimeout > o.IngestTimeout)
        {
            errors.Add($"Gateway:Mqtt:GrainCallAttemptTimeout must be between 500 ms and IngestTimeout ({o.IngestTimeout}), not {o.GrainCallAttemptTimeout}.");
        }

        if (o.ShutdownDrain < TimeSpan.Zero || o.ShutdownDrain > TimeSpan.FromMinutes(10))
        {
            errors.Add($"Gateway:Mqtt:ShutdownDrain must be between 0 and 10 min, not {o.ShutdownDrain}.");
        }

        if (o.PoisonThreshold is < 1 or > 1000)
        {
            errors.Add($"Gateway:Mqtt:PoisonThreshold must be between 1 and 1000, not {o.PoisonThreshold}.");
        }

        if (!(o.HubMessagesPerSecond >= 0.1 && o.HubMessagesPerSecond <= 100_000))
        {
            errors.Add($"Gateway:Mqtt:HubMessagesPerSecond must be between 0.1 and 100,000, not {o.HubMessagesPerSecond}.");
        }

        if (!(o.HubMessageBurst >= 1 && o.HubMessageBurst <= 1_000_000))
        {
            errors.Add($"Gateway:Mqtt:HubMessageBurst must be between 1 and 1,000,000, not {o.HubMessageBurst}.");
        }

        if (o.MaxPacketSize is < (256 + 8) * 1024 or > 268_435_460)
        {
            errors.Add($"Gateway:Mqtt:MaxPacketSize must be between 270,336 (a 256 KiB batch plus headers) and 268,435,460 (MQTT's limit), not {o.MaxPacketSize}.");
        }

        if (o.MaxUnauthenticatedConnections is < 1 or > 1_000_000)
        {
            errors.Add($"Gateway:Mqtt:MaxUnauthenticatedConnections must be between 1 and 1,000,000, not {o.MaxUnauthenticatedConnections}.");
        }

        if (o.ConnectTimeout < TimeSpan.FromSeconds(1) || o.ConnectTimeout > TimeSpan.FromMinutes(5))
        {
            errors.Add($"Gateway:Mqtt:ConnectTimeout must be between 1 s and 5 min, not {o.ConnectTimeout}.");
        }

        if (string.IsNullOrWhiteSpace(o.External.SharedGroup) || !SharedGroupPattern().IsMatch(o.External.SharedGroup))
        {
            errors.Add($"Gateway:Mqtt:External:SharedGroup must be 1-64 letters, digits, '.', '_' or '-', not '{o.External.SharedGroup}'.");
        }

        if (o.External.Port is < 1 or > 65535)
        {
            errors.Add($"Gateway:Mqtt:External:Port must be between 1 and 65535, not {o.External.Port}.");
        }

        if (o.External.SessionExpirySeconds < 1)
        {
            errors.Add($"Gateway:Mqtt:External:SessionExpirySeconds must be at least 1, not {o.External.SessionExpirySeconds}.");
        }

        if (o.External.ReorderWindow < TimeSpan.Zero || o.External.ReorderWindow > TimeSpan.FromMinutes(10))
        {
            errors.Add($"Gateway:Mqtt:External:ReorderWindow must be between 0 and 10 min, not {o.External.ReorderWindow}.");
        }

        if (o.External.Partitions is < 1 or > 1024)
        {
            errors.Add($"Gateway:Mqtt:External:Partitions must be between 1 and 1024, not {o.External.Partitions}.");
        }

        if (o.Mode == GatewayMode.External)
        {
            if (string.IsNullOrWhiteSpace(o.External.Host))
            {
                errors.Add("Gateway:Mqtt:External:Host is required when Gateway:Mqtt:Mode is External.");
            }

            if (o.External.AllowUntrustedCertificates && !environment.IsDevelopment())
            {
                errors.Add("Gateway:Mqtt:External:AllowUntrustedCertificates accepts any broker certificate (a man in the middle reads " +
                           "every device record); it is refused outside the Development environment.");
            }

            if (o.MaxInFlight > ushort.MaxValue)
            {
                errors.Add("Gateway:Mqtt:MaxInFlight is the MQTT ReceiveMaximum in External mode and must be ≤ 65535.");
            }
        }
        else
        {
            if (!string.Equals(o.BindAddress, "Any", StringComparison.OrdinalIgnoreCase) && !IPAddress.TryParse(o.BindAddress, out _))
            {
                errors.Add($"Gateway:Mqtt:BindAddress '{o.BindAddress}' is neither 'Any' nor an IP address.");
            }

            if (!string.IsNullOrEmpty(o.TlsCertificatePath) && !File.Exists(o.TlsCertificatePath))
            {
                errors.Add($"Gateway:Mqtt:TlsCertificatePath '{o.TlsCertificatePath}' does not exist.");
            }

            if (!o.PlainEnabled && string.IsNullOrEmpty(o.TlsCertificatePath))
            {
                errors.Add("Gateway:Mqtt:PlainEnabled is false but no Gateway:Mqtt:TlsCertificatePath is set: the broker would listen nowhere.");
            }

            if (o.PlainEnabled && !string.IsNullOrEmpty(o.TlsCertificatePath) && o.Port == o.TlsPort)
            {
                errors.Add($"Gateway:Mqtt:Port and Gateway:Mqtt:TlsPort are both {o.Port}.");
            }
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    [GeneratedRegex("^[A-Za-z0-9._-]{1,64}$", RegexOptions.CultureInvariant)]
    private static partial Regex SharedGroupPattern();
}

/// <summary>Checks <see cref="HubAuthOptions"/> at start-up; keeps the dev fleet shortcuts in development: outside the Development environment they fail the start.</summary>
public sealed class HubAuthOptionsValidator(IHostEnvironment environment) : IValidateOptions<HubAuthOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, HubAuthOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        var errors = new List<string>();
        if (o.Pbkdf2Iterations is < 10_000 or > 10_000_000)
        {
            errors.Add($"Gateway:Hubs:Pbkdf2Iterations must be between 10,000 and 10,000,000, not {o.Pbkdf2Iterations}.");
        }

        if (o.VerifiedCacheTtl < TimeSpan.Zero || o.VerifiedCacheTtl > TimeSpan.FromDays(30))
        {
            errors.Add($"Gateway:Hubs:VerifiedCacheTtl must be between 0 and 30 days, not {o.VerifiedCacheTtl}.");
        }

        if (!(o.VerificationBudgetPerSecond >= 0.01 && o.VerificationBudgetPerSecond <= 100_000))
        {
            errors.Add($"Gateway:Hubs:VerificationBudgetPerSecond must be between 0.01 and 100,000, not {o.VerificationBudgetPerSecond}.");
        }

        if (!(o.VerificationBudgetBurst >= 1 && o.VerificationBudgetBurst <= 1_000_000))
        {
            errors.Add($"Gateway:Hubs:VerificationBudgetBurst must be between 1 and 1,000,000, not {o.VerificationBudgetBurst}.");
        }

        if (o.HashConcurrency is < 1 or > 256)
        {
            errors.Add($"Gateway:Hubs:HashConcurrency must be between 1 and 256, not {o.HashConcurrency}.");
        }

        if (o.HashWait < TimeSpan.FromMilliseconds(10) || o.HashWait > TimeSpan.FromMinutes(1))
        {
            errors.Add($"Gateway:Hubs:HashWait must be between 10 ms and 1 min, not {o.HashWait}.");
        }

        if (o.FailureBackoff < TimeSpan.Zero || o.FailureBackoff > TimeSpan.FromMinutes(10))
        {
            errors.Add($"Gateway:Hubs:FailureBackoff must be between 0 and 10 min, not {o.FailureBackoff}.");
        }

        if (o.FailureBackoffMax < TimeSpan.Zero || o.FailureBackoffMax > TimeSpan.FromHours(1))
        {
            errors.Add($"Gateway:Hubs:FailureBackoffMax must be between 0 and 1 h, not {o.FailureBackoffMax}.");
        }

        if (o.AddressFailureAllowance is < 0 or > 1_000_000)
        {
            errors.Add($"Gateway:Hubs:AddressFailureAllowance must be between 0 and 1,000,000, not {o.AddressFailureAllowance}.");
        }

        if (o.BrokerHashIterations is < 0 or > 1_000_000)
        {
            errors.Add($"Gateway:Hubs:BrokerHashIterations must be between 0 (none stored) and 1,000,000, not {o.BrokerHashIterations}.");
        }

        if (o.RegistryRecheckInterval < TimeSpan.FromSeconds(1) || o.RegistryRecheckInterval > TimeSpan.FromHours(1))
        {
            errors.Add($"Gateway:Hubs:RegistryRecheckInterval must be between 1 s and 1 h, not {o.RegistryRecheckInterval}.");
        }

        if (!string.IsNullOrEmpty(o.DevFleetSecret) && !environment.IsDevelopment())
        {
            errors.Add("Gateway:Hubs:DevFleetSecret lets any hub derive its own password; it is refused outside the Development " +
                       "environment. Provision each hub (docs/gateway.md).");
        }

        if (o.AutoPairOnFirstBatch && !environment.IsDevelopment())
        {
            errors.Add("Gateway:Hubs:AutoPairOnFirstBatch lets the first hub claim any pump; it is refused outside the Development " +
                       "environment. Pair pumps explicitly (POST /api/hubs/{hubId}/pumps/{serial}).");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
