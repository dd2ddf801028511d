using System.Net;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace PumpFleet.Gateway.Hosting;

/// <summary>Cross-field rules of <see cref="MqttGatewayOptions"/> that data annotations cannot express.</summary>
public sealed class MqttGatewayOptionsValidator(IHostEnvironment environment) : IValidateOptions<MqttGatewayOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, MqttGatewayOptions o)
    {
        var errors = new List<string>();
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
}

/// <summary>Keeps the dev fleet shortcuts in development: outside the Development environment they fail the start.</summary>
public sealed class HubAuthOptionsValidator(IHostEnvironment environment) : IValidateOptions<HubAuthOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, HubAuthOptions o)
    {
        var errors = new List<string>();
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
