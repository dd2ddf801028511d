using System.Reflection;
using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Primitives;

namespace PumpFleet.Dashboard.Hosting;

/// <summary>
/// Serves files embedded under logical names like <c>wwwroot/app/fleet.js</c>. The stock EmbeddedFileProvider
/// guesses paths from dotted resource names, which breaks on folders such as <c>lib/chart.js/</c>.
/// </summary>
internal sealed class EmbeddedAssets(Assembly assembly, string root) : IFileProvider
{
    private static readonly DateTimeOffset BuiltAt = DateTimeOffset.UtcNow;

    public IFileInfo GetFileInfo(string subpath)
    {
        var name = root + "/" + subpath.TrimStart('/');
        return assembly.GetManifestResourceInfo(name) is null ? new NotFoundFileInfo(subpath) : new Entry(assembly, name);
    }

    public IDirectoryContents GetDirectoryContents(string subpath) => NotFoundDirectoryContents.Singleton;

    public IChangeToken Watch(string filter) => NullChangeToken.Singleton;

    private sealed class Entry(Assembly assembly, string name) : IFileInfo
    {
        public bool Exists => true;
        public long Length { get; } = GetLength(assembly, name);
        public string? PhysicalPath => null;
        public string Name => name[(name.LastIndexOf('/') + 1)..];
        public DateTimeOffset LastModified => BuiltAt;
        public bool IsDirectory => false;

        public Stream CreateReadStream() => assembly.GetManifestResourceStream(name) ?? throw new FileNotFoundException(name);

        private static long GetLength(Assembly a, string n)
        {
            using var s = a.GetManifestResourceStream(n);
            return s?.Length ?? 0;
        }
    }
}
