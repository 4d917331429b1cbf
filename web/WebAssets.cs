using System.Collections.Frozen;
using Microsoft.AspNetCore.Http;

namespace Pipeline.Web;

/// <summary>The app's stylesheet, script and chart library, embedded in the assembly and served from memory with a content type and a cache lifetime.</summary>
internal static class WebAssets
{
    private static readonly FrozenDictionary<string, (byte[] Bytes, string ContentType)> Files = Load();

    public static IResult Serve(string name, HttpContext context)
    {
        if (!Files.TryGetValue(name, out var file)) return Results.NotFound();
        context.Response.Headers.CacheControl = "public, max-age=3600";
        return Results.Bytes(file.Bytes, file.ContentType);
    }

    private static FrozenDictionary<string, (byte[], string)> Load()
    {
        var assembly = typeof(WebAssets).Assembly;
        var files = new Dictionary<string, (byte[], string)>();
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith("assets/", StringComparison.Ordinal)))
        {
            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            var name = resource["assets/".Length..];
            files[name] = (copy.ToArray(), Path.GetExtension(name) switch
            {
                ".css" => "text/css; charset=utf-8",
                ".js" => "text/javascript; charset=utf-8",
                _ => "application/octet-stream",
            });
        }
        return files.ToFrozenDictionary();
    }
}
