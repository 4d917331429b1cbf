using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using Microsoft.AspNetCore.Http.HttpResults;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Core.Registry;
using Pipeline.Infra.Hosting;

namespace Pipeline.Registry;

/// <summary>The registry's HTTP API on the API port: network, registrations, transfers, look-ups.</summary>
public static class RegistryEndpoints
{
    private const string WritesPolicy = "registry-writes";

    /// <summary>The limits on the registry's writes: a token bucket per client address, refused 429 before the body is read.</summary>
    public static IServiceCollection AddRegistryLimits(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<RegistryLimits>()
            .Bind(configuration.GetSection(RegistryLimits.Section))
            .Validate(o => o.MaxBodyBytes > 0 && o.ClientWritesPerSecond > 0 && o.ClientWriteBurst > 0, "Registry:Limits:MaxBodyBytes, ClientWritesPerSecond and ClientWriteBurst must be positive.")
            .ValidateOnStart();
        services.AddRateLimiter(o =>
        {
            o.AddPolicy(WritesPolicy, context =>
            {
                var limits = context.RequestServices.GetRequiredService<IOptions<RegistryLimits>>().Value;
                return RateLimitPartition.GetTokenBucketLimiter(context.Connection.RemoteIpAddress?.ToString() ?? "unknown", _ => new TokenBucketRateLimiterOptions
                {
                    TokenLimit = limits.ClientWriteBurst,
                    TokensPerPeriod = limits.ClientWritesPerSecond,
                    ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                    QueueLimit = 0,
                    AutoReplenishment = true,
                });
            });
            o.OnRejected = (rejected, _) =>
            {
                var context = rejected.HttpContext;
                var limits = context.RequestServices.GetRequiredService<IOptions<RegistryLimits>>().Value;
                var wait = rejected.Lease.TryGetMetadata(MetadataName.RetryAfter, out var retryAfter) ? Math.Max(1, (int)Math.Ceiling(retryAfter.TotalSeconds)) : 1;
                var problem = Problems.For(context, ReasonCode.RateLimited,
                    $"More than {limits.ClientWritesPerSecond} registrations and transfers per second (burst {limits.ClientWriteBurst}) from {context.Connection.RemoteIpAddress}; retry after {wait} s.", wait);
                return new ValueTask(problem.ExecuteAsync(context));
            };
        });
        return services;
    }

    private static readonly IReadOnlyDictionary<string, IReadOnlyList<Eip712Field>> SigningTypes =
        new[] { Eip712Domain.Type, RegistrationMessage.Types[DeviceKind.Vehicle], RegistrationMessage.Types[DeviceKind.Weather], TransferMessage.Type }.ToDictionary(t => t.Name, t => t.Fields);

    public static IEndpointRouteBuilder MapRegistryApi(this IEndpointRouteBuilder app, int port)
    {
        var devices = app.MapGroupOnPort("/v1", port).WithTags("Registry");
        var limits = app.ServiceProvider.GetRequiredService<IOptions<RegistryLimits>>().Value;
        // Writes: limited per client first, then the body, before anything is bound.
        var writes = devices.MapGroup("").RequireRateLimiting(WritesPolicy).WithMetadata(new RequestSizeLimitAttribute(limits.MaxBodyBytes));

        devices.MapGet("/network", (DeviceRegistry registry) => TypedResults.Ok(new NetworkDescription(registry.Domain, SigningTypes)))
        .WithName("GetNetwork")
        .WithSummary("The EIP-712 domain and types registry messages are signed with")
        .WithDescription("Registrations and transfers are EIP-712 typed data signed for this domain (name, version, chainId); one signed for another network is refused with wrong_network.");

        writes.MapPost("/devices", async Task<Results<Created<Device>, ProblemHttpResult>> (HttpContext context, RegisterDeviceRequest request, DeviceRegistry registry) =>
        {
            if (Missing(request.TypedData, request.OwnerSignature, request.DeviceSignature)) return Problems.For(context, MissingFields("ownerSignature, deviceSignature"));
            if (RawText(request.TypedData) is not { } typedData) return Problems.For(context, NotUtf8);
            var (device, rejection) = await registry.RegisterAsync(typedData, request.OwnerSignature, request.DeviceSignature, context.RequestAborted);
            return device is not null ? TypedResults.Created($"/v1/devices/{device.Id}", device) : Problems.For(context, rejection!);
        })
        .WithName("RegisterDevice")
        .WithSummary("Register a device")
        .WithDescription("The owner wallet and the device key both sign (EIP-712, eth_signTypedData_v4) the same typed data: primaryType RegisterVehicle(address device,address owner,string make,string model,string year,string firmware,string issuedAt) or RegisterWeatherStation(address device,address owner,string latitude,string longitude,string elevation,string model,string issuedAt), domain as GET /v1/network returns it.")
        .ProducesProblem(StatusCodes.Status400BadRequest)
        .ProducesProblem(StatusCodes.Status403Forbidden)
        .ProducesProblem(StatusCodes.Status409Conflict)
        .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
        .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
        .ProducesProblem(StatusCodes.Status429TooManyRequests);

        writes.MapPost("/devices/{address}/transfers", async Task<Results<Ok<Device>, ProblemHttpResult>> (HttpContext context, string address, TransferDeviceRequest request, DeviceRegistry registry) =>
        {
            if (!EthAddress.TryParse(address.AsSpan(), out _)) return Problems.For(context, BadAddress(address));
            if (Missing(request.TypedData, request.FromSignature, request.ToSignature)) return Problems.For(context, MissingFields("fromSignature, toSignature"));
            if (RawText(request.TypedData) is not { } typedData) return Problems.For(context, NotUtf8);
            var (device, rejection) = await registry.TransferAsync(address, typedData, request.FromSignature, request.ToSignature, context.RequestAborted);
            return device is not null ? TypedResults.Ok(device) : Problems.For(context, rejection!);
        })
        .WithName("TransferDevice")
        .WithSummary("Transfer a device to a new owner")
        .WithDescription("The current and the new owner both sign (EIP-712) TransferDevice(address device,address from,address to,uint256 nonce,string issuedAt), nonce = the transfers so far, domain as GET /v1/network returns it.")
        .ProducesProblem(StatusCodes.Status400BadRequest)
        .ProducesProblem(StatusCodes.Status403Forbidden)
        .ProducesProblem(StatusCodes.Status404NotFound)
        .ProducesProblem(StatusCodes.Status409Conflict)
        .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
        .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
        .ProducesProblem(StatusCodes.Status429TooManyRequests);

        devices.MapGet("/devices/{address}", async Task<Results<Ok<Device>, ProblemHttpResult>> (HttpContext context, string address, DeviceRegistry registry) =>
        {
            if (!EthAddress.TryParse(address.AsSpan(), out _)) return Problems.For(context, BadAddress(address));
            var device = await registry.FindAsync(address, context.RequestAborted);
            return device is not null ? TypedResults.Ok(device) : Problems.For(context, new Rejection(ReasonCode.UnknownDevice, $"Device {address.ToLowerInvariant()} is not registered."));
        })
        .WithName("GetDevice")
        .WithSummary("Look up a device")
        .ProducesProblem(StatusCodes.Status400BadRequest)
        .ProducesProblem(StatusCodes.Status404NotFound);

        devices.MapGet("/owners/{address}/devices", async Task<Results<Ok<IReadOnlyList<Device>>, ProblemHttpResult>> (HttpContext context, string address, DeviceRegistry registry) =>
            EthAddress.TryParse(address.AsSpan(), out _)
                ? TypedResults.Ok(await registry.OwnedByAsync(address, context.RequestAborted))
                : Problems.For(context, BadAddress(address)))
        .WithName("GetOwnerDevices")
        .WithSummary("The devices an owner holds")
        .ProducesProblem(StatusCodes.Status400BadRequest);

        return app;
    }

    private static bool Missing(JsonElement typedData, params string?[] signatures) => typedData.ValueKind != JsonValueKind.Object || signatures.Any(string.IsNullOrEmpty);

    /// <summary>
    /// The typed data's text as sent, or null when it is not UTF-8: System.Text.Json binds a JsonElement without checking
    /// the bytes inside its strings, and GetRawText would throw on them (a 500, found by the endpoint fuzz).
    /// </summary>
    private static string? RawText(JsonElement typedData)
    {
        var raw = JsonMarshal.GetRawUtf8Value(typedData);
        return Utf8.IsValid(raw) ? Encoding.UTF8.GetString(raw) : null;
    }

    private static readonly Rejection NotUtf8 = new(ReasonCode.BadEncoding, "The typed data is not valid UTF-8.");
    private static Rejection MissingFields(string signatures) => new(ReasonCode.Malformed, $"The body needs typedData (EIP-712 typed data for the domain GET /v1/network returns), {signatures}.");
    private static Rejection BadAddress(string address) => new(ReasonCode.BadAddress, $"'{address}' is not 0x followed by 40 hex digits.");
}
