using Microsoft.Extensions.Options;

namespace PumpFleet.ServiceDefaults;

/// <summary>
/// Checks <see cref="TracingOptions"/>. Tracing is wired while the host is composed, so the options are read and
/// checked then (an invalid value stops the process before it starts), not through <c>ValidateOnStart</c>.
/// </summary>
public sealed class TracingOptionsValidator : IValidateOptions<TracingOptions>
{
    /// <inheritdoc />
    public ValidateOptionsResult Validate(string? name, TracingOptions o)
    {
        ArgumentNullException.ThrowIfNull(o);
        var errors = new List<string>();
        if (!(o.SampleRatio >= 0 && o.SampleRatio <= 1))
        {
            errors.Add($"{TracingOptions.SectionName}:SampleRatio must be between 0 and 1, not {o.SampleRatio}.");
        }

        if (o.OtlpProtocol is not ("grpc" or "http/protobuf"))
        {
            errors.Add($"{TracingOptions.SectionName}:OtlpProtocol must be 'grpc' or 'http/protobuf', not '{o.OtlpProtocol}'.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
