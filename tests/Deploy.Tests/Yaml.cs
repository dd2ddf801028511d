using YamlDotNet.Core;
using YamlDotNet.Core.Events;
using YamlDotNet.Serialization;

namespace PumpFleet.Deploy.Tests;

/// <summary>
/// Untyped YAML access: documents become nested dictionaries, lists and strings, which is all the assertions
/// need and keeps the tests independent of Kubernetes object models.
/// </summary>
internal static class Yaml
{
    private static readonly IDeserializer s_deserializer = new DeserializerBuilder().Build();

    public static IReadOnlyList<Dictionary<object, object>> LoadAll(string text)
    {
        var documents = new List<Dictionary<object, object>>();
        var parser = new Parser(new StringReader(text));
        parser.Consume<StreamStart>();
        while (parser.Accept<DocumentStart>(out _))
        {
            // A document of only comments (e.g. a template whose condition is false) deserializes to null.
            if (s_deserializer.Deserialize<object?>(parser) is Dictionary<object, object> map)
            {
                documents.Add(map);
            }
        }

        return documents;
    }

    public static Dictionary<object, object> Load(string text) =>
        LoadAll(text).Single();

    /// <summary>Follows a path of mapping keys; null when any step is missing.</summary>
    public static object? At(this object? node, params string[] path)
    {
        foreach (var key in path)
        {
            if (node is not Dictionary<object, object> map || !map.TryGetValue(key, out node))
            {
                return null;
            }
        }

        return node;
    }

    public static Dictionary<object, object> Map(this object? node, params string[] path) =>
        node.At(path) as Dictionary<object, object>
            ?? throw new Xunit.Sdk.XunitException($"Expected a mapping at {string.Join('.', path)}.");

    public static IReadOnlyList<object> Seq(this object? node, params string[] path) =>
        node.At(path) as List<object> ?? [];

    public static string? Str(this object? node, params string[] path) => node.At(path) as string;
}
