using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Configuration;
using Npgsql;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Trace;
using Microsoft.Extensions.Options;

namespace PumpFleet.ServiceDefaults;

/// <summary>Composition shared by every PumpFleet host.</summary>
public static class ServiceDefaultsExtensions
{
    /// <summary>Health-check tag of the checks that gate readiness (dependencies reachable).</summary>
    public const string ReadyTag = "ready";

    /// <summary>Metric streams a process's meter provider keeps (the SDK's default is 1,000).</summary>
    public const int MaxMetricStreams = 10_000;

    /// <summary>
    /// OpenTelemetry metrics (every <c>PumpFleet.*</c> meter, Orleans, Npgsql, ASP.NET Core, .NET runtime) exported for
    /// Prometheus, and health checks: liveness (the process serves) and readiness (PostgreSQL answers).
    /// </summary>
    public static IHostApplicationBuilder AddServiceDefaults(this IHostApplicationBuilder builder)
    {
        builder.Services.AddSingleton<OrleansUnitBridge>();
        builder.Services.AddOpenTelemetry().WithMetrics(m => m
            .AddMeter("PumpFleet.*")
            // Lint-clean for promtool: help text, base units, no _count on gauges (see MetricViews).
            .AddView(MetricViews.Configure)
            .AddInstrumentation(sp => sp.GetRequiredService<OrleansUnitBridge>())
            .AddMeter("Microsoft.Orleans")
            .AddMeter("Npgsql")
            .AddAspNetCoreInstrumentation()
            .AddRuntimeInstrumentation()
            .AddPrometheusExporter()
            // The SDK drops every instrument past its stream limit (1,000 by default) without a word, and instruments
            // that were created and disposed still count. A provider listens to every meter of its names in the
            // process, so where hosts come and go in one process (the test assemblies start dozens) the late ones lost
            // their gauges: a scrape answered without any of the fleet gauges. One process of the platform has a few
            // hundred streams; the limit costs a slot per stream, not memory per series.
            .SetMaxMetricStreams(MaxMetricStreams));
        AddTracing(builder);
        builder.Services.AddHealthChecks()
            .AddCheck("self", () => HealthCheckResult.Healthy())
            .AddCheck<PostgresHealthCheck>("postgresql", tags: [ReadyTag]);
        return builder;
    }

    /// <summary>
    /// Tracing when <see cref="TracingOptions"/> turns it on: the platform's sources (one per component), Orleans' grain
    /// calls, Npgsql's commands and ASP.NET Core's requests; OTLP export when an endpoint is configured.
    /// </summary>
    private static void AddTracing(IHostApplicationBuilder builder)
    {
        var options = builder.Configuration.GetSection(TracingOptions.SectionName).Get<TracingOptions>() ?? new TracingOptions();
        if (!options.IsOn)
        {
            return;
        }

        var result = new TracingOptionsValidator().Validate(null, options);
        if (result.Failed)
        {
            throw new OptionsValidationException(TracingOptions.SectionName, typeof(TracingOptions), result.Failures);
        }

        builder.Services.AddOpenTelemetry().WithTracing(t =>
        {
            t.SetSampler(new ParentBasedSampler(new TraceIdRatioBasedSampler(options.SampleRatio)))
                .AddSource(PumpFleetActivitySources.Wildcard)
                .AddSource(PumpFleetActivitySources.Orleans)
                .AddNpgsql()
                .AddAspNetCoreInstrumentation();
            if (options.OtlpEndpoint is { } endpoint)
            {
                t.AddOtlpExporter(o =>
                {
                    o.Endpoint = endpoint;
                    o.Protocol = options.OtlpProtocol == "grpc" ? OtlpExportProtocol.Grpc : OtlpExportProtocol.HttpProtobuf;
                });
            }

            if (!string.IsNullOrEmpty(options.SpanFile))
            {
                t.AddProcessor(new BatchActivityExportProcessor(new SpanFileExporter(options.SpanFile), maxQueueSize: 1 << 20,
                    scheduledDelayMilliseconds: 500, maxExportBatchSize: 8192));
            }
        });
    }

    /// <summary>Maps <c>/metrics</c>, <c>/health/live</c> and <c>/health/ready</c>.</summary>
    public static WebApplication MapDefaultEndpoints(this WebApplication app)
    {
        app.MapPrometheusScrapingEndpoint("/metrics");
        app.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = c => c.Name == "self", ResponseWriter = WriteAsync });
        app.MapHealthChecks("/health/ready", new HealthCheckOptions { Predicate = c => c.Tags.Contains(ReadyTag), ResponseWriter = WriteAsync });
        return app;
    }

    private static Task WriteAsync(HttpContext context, HealthReport report)
    {
        context.Response.ContentType = "application/json";
        return context.Response.WriteAsJsonAsync(new
        {
            status = report.Status.ToString(),
            checks = report.Entries.Select(e => new { name = e.Key, status = e.Value.Status.ToString(), description = e.Value.Description }),
        });
    }
}
