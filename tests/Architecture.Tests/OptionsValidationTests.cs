using System.ComponentModel.DataAnnotations;
using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;

namespace PumpFleet.Architecture.Tests;

/// <summary>
/// One options-validation style: every options type bound with <c>AddOptions&lt;T&gt;()</c> is checked by an
/// <see cref="IValidateOptions{TOptions}"/> class (code, so a rule may depend on the environment or on other fields),
/// registered with <c>ValidateOnStart()</c>; no data annotations, no <see cref="IValidatableObject"/>.
/// </summary>
public sealed partial class OptionsValidationTests
{
    // Every PumpFleet assembly next to the tests (this project references every library).
    private static readonly List<Type> PlatformTypes =
        [.. Directory.EnumerateFiles(AppContext.BaseDirectory, "PumpFleet.*.dll")
            .Where(f => !Path.GetFileName(f).StartsWith("PumpFleet.Architecture.Tests", StringComparison.Ordinal))
            .Select(f => Assembly.Load(AssemblyName.GetAssemblyName(f)))
            .SelectMany(a => a.GetTypes())];

    [Fact]
    public void NoType_ValidatesItselfWithDataAnnotations()
    {
        var offenders = PlatformTypes
            .Where(t => typeof(IValidatableObject).IsAssignableFrom(t)
                || t.GetProperties(BindingFlags.Public | BindingFlags.Instance | BindingFlags.DeclaredOnly)
                    .Any(p => p.GetCustomAttributes(inherit: false).Any(a => a is ValidationAttribute or ValidateObjectMembersAttribute or ValidateEnumeratedItemsAttribute)))
            .Select(t => t.FullName).ToList();
        Assert.True(offenders.Count == 0, $"Validate options in an IValidateOptions<T> class, not with attributes or IValidatableObject: {string.Join(", ", offenders)}");
    }

    [Fact]
    public void NoRegistration_UsesDataAnnotations()
    {
        var offenders = RepositoryLayout.Sources("src", "*.cs")
            .Where(f => File.ReadAllText(f).Contains(".ValidateDataAnnotations()", StringComparison.Ordinal))
            .Select(RepositoryLayout.Relative).ToList();
        Assert.True(offenders.Count == 0, $"Register the options' IValidateOptions<T> class instead of ValidateDataAnnotations(): {string.Join(", ", offenders)}");
    }

    private static List<string> BoundOptionNames() =>
        [.. RepositoryLayout.Sources("src", "*.cs")
            .SelectMany(f => AddOptions().Matches(File.ReadAllText(f)).Select(m => m.Groups["type"].Value))
            .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal)];

    public static TheoryData<string> BoundOptions()
    {
        var data = new TheoryData<string>();
        foreach (var name in BoundOptionNames())
        {
            data.Add(name);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(BoundOptions))]
    public void EveryBoundOptionsType_HasAValidatorRegisteredOnStart(string optionsType)
    {
        var type = Assert.Single(PlatformTypes, t => t.Name == optionsType && t.Namespace?.StartsWith("PumpFleet.", StringComparison.Ordinal) == true);
        var validator = typeof(IValidateOptions<>).MakeGenericType(type);
        Assert.True(PlatformTypes.Any(t => t is { IsClass: true, IsAbstract: false } && validator.IsAssignableFrom(t)),
            $"{type.FullName} is bound from configuration but has no IValidateOptions<{type.Name}> class.");

        // At least one registration validates on start and registers that validator, so a bad value stops the process.
        var sources = RepositoryLayout.Sources("src", "*.cs").Select(File.ReadAllText).ToList();
        Assert.Contains(sources, s => s.Contains($"AddOptions<{type.Name}>()", StringComparison.Ordinal)
            && Regex.IsMatch(s, $@"AddOptions<{type.Name}>\(\)[^;]*\.ValidateOnStart\(\)", RegexOptions.CultureInvariant)
            && s.Contains($"IValidateOptions<{type.Name}>", StringComparison.Ordinal));
    }

    [Fact]
    public void EveryValidator_AcceptsTheDefaults_InProduction()
    {
        // The ranges were moved from attributes into code: a default outside its own range would stop every process.
        var validators = PlatformTypes.Where(t => t is { IsClass: true, IsAbstract: false, IsGenericType: false })
            .SelectMany(t => t.GetInterfaces().Where(i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IValidateOptions<>)).Select(i => (Type: t, Options: i.GetGenericArguments()[0])))
            .ToList();
        Assert.True(validators.Count >= 9, $"Only {validators.Count} validators found.");
        var failures = new List<string>();
        foreach (var (type, options) in validators)
        {
            var ctor = type.GetConstructors(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance).Single();
            var validator = ctor.Invoke([.. ctor.GetParameters().Select(p => p.ParameterType == typeof(Microsoft.Extensions.Hosting.IHostEnvironment)
                ? new Production()
                : throw new InvalidOperationException($"{type.Name} needs a {p.ParameterType.Name}"))]);
            var result = (ValidateOptionsResult)type.GetMethod(nameof(IValidateOptions<object>.Validate))!.Invoke(validator, [null, Activator.CreateInstance(options)])!;
            if (result.Failed)
            {
                failures.Add($"{type.Name}: {result.FailureMessage}");
            }
        }

        Assert.True(failures.Count == 0, string.Join(Environment.NewLine, failures));
    }

    private sealed class Production : Microsoft.Extensions.Hosting.IHostEnvironment
    {
        public string EnvironmentName { get; set; } = "Production";

        public string ApplicationName { get; set; } = "tests";

        public string ContentRootPath { get; set; } = AppContext.BaseDirectory;

        public Microsoft.Extensions.FileProviders.IFileProvider ContentRootFileProvider { get; set; } = new Microsoft.Extensions.FileProviders.NullFileProvider();
    }

    [Fact]
    public void TheOptionsTypes_AreFound()
    {
        // Guards the theory above against passing vacuously.
        Assert.Contains("MqttGatewayOptions", BoundOptionNames());
        Assert.Contains("AnomalyDetectionOptions", BoundOptionNames());
    }

    [GeneratedRegex(@"AddOptions<(?<type>\w+)>\(\)", RegexOptions.CultureInvariant)]
    private static partial Regex AddOptions();
}
