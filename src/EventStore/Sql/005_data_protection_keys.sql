-- ASP.NET Core Data Protection key ring (cookies, antiforgery tokens), shared by every dashboard replica so that each
-- accepts the cookies the others issued. Keys are XML elements as the framework writes them; they are never updated.
CREATE TABLE IF NOT EXISTS pf_data_protection_keys (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    friendly_name text NOT NULL,
    xml          text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
