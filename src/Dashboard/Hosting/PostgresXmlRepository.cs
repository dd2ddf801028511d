using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Npgsql;

namespace PumpFleet.Dashboard.Hosting;

/// <summary>The Data Protection key ring in PostgreSQL (<c>pf_data_protection_keys</c>, Sql/042 of the event store).</summary>
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
