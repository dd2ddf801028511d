using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Npgsql;

namespace PumpFleet.EventStore.DataProtection;

/// <summary>Keeps the ASP.NET Core Data Protection key ring in the platform's database.</summary>
public static class DataProtectionExtensions
{
    /// <summary>
    /// Stores the key ring in <c>pf_data_protection_keys</c> (Sql/005), so every replica of a web process accepts the
    /// cookies and antiforgery tokens the others issued. Needs the data source of <c>AddPumpFleetEventStore</c>.
    /// </summary>
    public static IDataProtectionBuilder PersistKeysToPumpFleetDatabase(this IDataProtectionBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        builder.Services.AddSingleton<IConfigureOptions<KeyManagementOptions>>(sp => new ConfigureOptions<KeyManagementOptions>(o =>
            o.XmlRepository = new PostgresXmlRepository(sp.GetRequiredService<NpgsqlDataSource>())));
        return builder;
    }
}

/// <summary>The Data Protection key ring in PostgreSQL (<c>pf_data_protection_keys</c>, Sql/005).</summary>
internal sealed class PostgresXmlRepository(NpgsqlDataSource dataSource) : IXmlRepository
{
    // The framework's repository interface is synchronous; it is called rarely (key ring refresh, about daily).
    public IReadOnlyCollection<XElement> GetAllElements()
    {
        using var cmd = dataSource.CreateCommand("SELECT xml FROM pf_data_protection_keys ORDER BY id");
        using var r = cmd.ExecuteReader();
        var list = new List<XElement>();
        while (r.Read())
        {
            list.Add(XElement.Parse(r.GetString(0)));
        }

        return list;
    }

    public void StoreElement(XElement element, string friendlyName)
    {
        ArgumentNullException.ThrowIfNull(element);
        using var cmd = dataSource.CreateCommand("INSERT INTO pf_data_protection_keys (friendly_name, xml) VALUES ($1, $2)");
        cmd.Parameters.Add(new() { Value = friendlyName });
        cmd.Parameters.Add(new() { Value = element.ToString(SaveOptions.DisableFormatting) });
        cmd.ExecuteNonQuery();
    }
}
