using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Pipeline.Core.Crypto;
using Pipeline.Core.Envelope;
using Pipeline.Infra.Http;

namespace Pipeline.Streams.Registry;

/// <summary>A registration: the message text and the two EIP-191 signatures over it.</summary>
public sealed record RegisterDeviceRequest(string Message, string OwnerSignature, string DeviceSignature);

/// <summary>A transfer: the message text, signed by the current owner (from) and the new owner (to).</summary>
public sealed record TransferDeviceRequest(string Message, string FromSignature, string ToSignature);

public static class RegistryEndpoints
{
    public static IEndpointRouteBuilder MapRegistryEndpoints(this IEndpointRouteBuilder app, int port)
    {
        var devices = app.MapGroup("/v1").RequireHost($"*:{port}").WithTags("Registry");

        devices.MapPost("/devices", async (HttpContext context, RegisterDeviceRequest request, DeviceRegistry registry) =>
        {
            if (Missing(request.Message, request.OwnerSignature, request.DeviceSignature)) return Problems.For(context, MissingFields("message, ownerSignature, deviceSignature"));
            var (device, rejection) = await registry.RegisterAsync(request.Message, request.OwnerSignature, request.DeviceSignature, context.RequestAborted);
            return device is not null ? Results.Created($"/v1/devices/{device.Id}", device) : Problems.For(context, rejection!);
        })
        .WithName("RegisterDevice")
        .WithSummary("Register a device")
        .WithDescription("The owner wallet and the device key both sign (EIP-191 personal_sign) the same registration message: {\"action\":\"register_device\",\"device\":\"0x…\",\"owner\":\"0x…\",\"kind\":\"vehicle\",\"metadata\":{\"make\":…,\"model\":…,\"year\":…,\"firmware\":…},\"issuedAt\":\"…\"}; stations give latitude, longitude, elevation and model.")
        .Produces<Device>(StatusCodes.Status201Created)
        .ProducesProblem(StatusCodes.Status400BadRequest)
        .ProducesProblem(StatusCodes.Status403Forbidden)
        .ProducesProblem(StatusCodes.Status409Conflict)
        .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
        .ProducesProblem(StatusCodes.Status415UnsupportedMediaType);

        devices.MapPost("/devices/{address}/transfers", async (HttpContext context, string address, TransferDeviceRequest request, DeviceRegistry registry) =>
        {
            if (!EthAddress.TryParse(address.AsSpan(), out _)) return Problems.For(context, BadAddress(address));
            if (Missing(request.Message, request.FromSignature, request.ToSignature)) return Problems.For(context, MissingFields("message, fromSignature, toSignature"));
            var (device, rejection) = await registry.TransferAsync(address, request.Message, request.FromSignature, request.ToSignature, context.RequestAborted);
            return device is not null ? Results.Ok(device) : Problems.For(context, rejection!);
        })
        .WithName("TransferDevice")
        .WithSummary("Transfer a device to a new owner")
        .WithDescription("The current and the new owner both sign {\"action\":\"transfer_device\",\"device\":\"0x…\",\"from\":\"0x…\",\"to\":\"0x…\",\"nonce\":<transfers so far>,\"issuedAt\":\"…\"}.")
        .Produces<Device>()
        .ProducesProblem(StatusCodes.Status400BadRequest)
        .ProducesProblem(StatusCodes.Status403Forbidden)
        .ProducesProblem(StatusCodes.Status404NotFound)
        .ProducesProblem(StatusCodes.Status409Conflict)
        .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
        .ProducesProblem(StatusCodes.Status415UnsupportedMediaType);

        devices.MapGet("/devices/{address}", async (HttpContext context, string address, DeviceRegistry registry) =>
        {
            if (!EthAddress.TryParse(address.AsSpan(), out _)) return Problems.For(context, BadAddress(address));
            var device = await registry.FindAsync(address, context.RequestAborted);
            return device is not null ? Results.Ok(device) : Problems.For(context, new Rejection(ReasonCode.UnknownDevice, $"Device {address.ToLowerInvariant()} is not registered."));
        })
        .WithName("GetDevice")
        .WithSummary("Look up a device")
        .Produces<Device>()
        .ProducesProblem(StatusCodes.Status400BadRequest)
        .ProducesProblem(StatusCodes.Status404NotFound);

        devices.MapGet("/owners/{address}/devices", async (HttpContext context, string address, DeviceRegistry registry) =>
            EthAddress.TryParse(address.AsSpan(), out _)
                ? Results.Ok(await registry.OwnedByAsync(address, context.RequestAborted))
                : Problems.For(context, BadAddress(address)))
        .WithName("GetOwnerDevices")
        .WithSummary("The devices an owner holds")
        .Produces<IReadOnlyList<Device>>()
        .ProducesProblem(StatusCodes.Status400BadRequest);

        return app;
    }

    private static bool Missing(params string?[] values) => values.Any(string.IsNullOrEmpty);
    private static Rejection MissingFields(string fields) => new(ReasonCode.Malformed, $"The body needs {fields}.");
    private static Rejection BadAddress(string address) => new(ReasonCode.BadAddress, $"'{address}' is not 0x followed by 40 hex digits.");
}
