using System.Reflection;
using NetArchTest.Rules;

namespace PumpFleet.Architecture.Tests;

/// <summary>Which project may use what, checked on the compiled types (NetArchTest).</summary>
public sealed class DependencyTests
{
    private static readonly Assembly Contracts = typeof(Contracts.StreamIds).Assembly;
    private static readonly Assembly Domain = typeof(Domain.Pumps.PumpState).Assembly;
    private static readonly Assembly Projections = typeof(Projections.ProjectionRunner).Assembly;
    private static readonly Assembly ReadModels = typeof(ReadModels.PumpProjection).Assembly;
    private static readonly Assembly Dashboard = typeof(Dashboard.Hosting.DashboardHostingExtensions).Assembly;
    private static readonly Assembly Gateway = typeof(Gateway.Hosting.GatewayServiceCollectionExtensions).Assembly;
    private static readonly Assembly Streaming = typeof(Streaming.LogStreams).Assembly;

    private static void AssertKept(ConditionList rule, string because)
    {
        var result = rule.GetResult();
        Assert.True(result.IsSuccessful, $"{because} Offending types: {string.Join(", ", result.FailingTypeNames ?? [])}");
    }

    [Fact]
    public void Domain_ReferencesNoInfrastructure()
    {
        // Every type in Domain.dll, generated ones included (src/Domain/Domain.csproj keeps the Orleans code generator
        // that Contracts' SDK brings along out of the compilation).
        AssertKept(Types.InAssembly(Domain).ShouldNot().HaveDependencyOnAny("Orleans", "Npgsql", "Microsoft.AspNetCore", "MQTTnet", "PumpFleet.EventStore", "PumpFleet.Grains", "PumpFleet.Projections", "PumpFleet.ReadModels"),
            "The domain core is pure: Contracts in, decisions out; no grain, database, web or MQTT type.");
    }

    [Fact]
    public void Domain_HasTypes()
    {
        // Guards the rule above against passing vacuously (an empty selection).
        Assert.Contains(Types.InAssembly(Domain).GetTypes(), t => t.Name == "PumpState");
    }

    [Fact]
    public void Contracts_ReferenceNoInfrastructure()
    {
        AssertKept(Types.InAssembly(Contracts).ShouldNot().HaveDependencyOnAny("Npgsql", "Microsoft.AspNetCore", "MQTTnet", "PumpFleet.EventStore"),
            "Contracts are the shared vocabulary of every process; they name no database, web or MQTT type.");
    }

    [Fact]
    public void ProjectionEngine_KnowsNoReadModel()
    {
        AssertKept(Types.InAssembly(Projections).ShouldNot().HaveDependencyOnAny("PumpFleet.ReadModels", "PumpFleet.Grains", "PumpFleet.Dashboard"),
            "The engine runs any IProjection; the read models sit on top of it.");
    }

    [Fact]
    public void Dashboard_WritesNoSql()
    {
        AssertKept(Types.InAssembly(Dashboard).ShouldNot().HaveDependencyOn("Npgsql"),
            "The Dashboard asks the read models' owner (IReadModelQueries) and the event store's reader; it opens no connection of its own.");
    }

    [Fact]
    public void Gateway_KnowsNoReadModel()
    {
        AssertKept(Types.InAssembly(Gateway).ShouldNot().HaveDependencyOnAny("PumpFleet.ReadModels", "PumpFleet.Projections", "PumpFleet.Grains", "PumpFleet.Dashboard"),
            "The gateway talks to the grains through Contracts only.");
    }

    [Fact]
    public void ReadModels_DoNotReachIntoHosts()
    {
        AssertKept(Types.InAssembly(ReadModels).ShouldNot().HaveDependencyOnAny("PumpFleet.Dashboard", "PumpFleet.Gateway", "PumpFleet.Silo"),
            "Read models are asked by hosts, never the other way round.");
    }

    [Fact]
    public void StreamProvider_KnowsOnlyTheLog()
    {
        AssertKept(Types.InAssembly(Streaming).ShouldNot().HaveDependencyOnAny("Npgsql", "PumpFleet.ReadModels", "PumpFleet.Projections", "PumpFleet.Grains", "PumpFleet.Dashboard", "PumpFleet.Gateway"),
            "The stream provider reads the log through the event store's partition reader (the store owns the SQL) and knows none of its consumers.");
    }
}
