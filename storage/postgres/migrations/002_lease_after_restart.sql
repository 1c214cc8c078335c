-- While the database is down no node can renew its lease, so a restart
-- must not make every node look dead. Each node records its lease
-- length; a lease ends at lease_until, but never sooner than one full
-- lease after the database (re)started.

ALTER TABLE presence_nodes ADD COLUMN lease_ttl interval NOT NULL DEFAULT interval '15 seconds';

CREATE FUNCTION presence_lease_end(lease_until timestamptz, lease_ttl interval) RETURNS timestamptz
    LANGUAGE sql STABLE
    AS $$ SELECT greatest(lease_until, pg_postmaster_start_time() + lease_ttl) $$;

---- create above / drop below ----

DROP FUNCTION presence_lease_end(timestamptz, interval);
ALTER TABLE presence_nodes DROP COLUMN lease_ttl;
