-- Statuses, the nodes of a cluster with their leases, and which node
-- holds a connection of which user. Times are the database's clock.

CREATE TABLE presence_status (
    user_id         bigint      PRIMARY KEY,
    username        text        NOT NULL DEFAULT '',
    online          boolean     NOT NULL DEFAULT false,
    appear_offline  boolean     NOT NULL DEFAULT false,
    busy            boolean     NOT NULL DEFAULT false,
    wait_time       integer     CHECK (wait_time >= 0),
    last_seen       timestamptz NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    -- A REST heartbeat keeps the user online until then.
    heartbeat_until timestamptz,
    -- Grows with every change of state; nodes apply only newer records.
    version         bigint      NOT NULL DEFAULT 0
);

-- The sweeper looks for users stored online whose evidence is gone.
CREATE INDEX presence_status_online ON presence_status (user_id) WHERE online;

CREATE TABLE presence_nodes (
    node_id     text        PRIMARY KEY,
    started_at  timestamptz NOT NULL DEFAULT now(),
    -- The node is alive while lease_until is in the future; it renews it.
    lease_until timestamptz NOT NULL
);

-- A row says: this node holds at least one connection of the user, or is
-- within the grace after the last one.
CREATE TABLE presence_sessions (
    user_id bigint      NOT NULL,
    node_id text        NOT NULL REFERENCES presence_nodes ON DELETE CASCADE,
    since   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, node_id)
);

CREATE INDEX presence_sessions_node ON presence_sessions (node_id);

---- create above / drop below ----

DROP TABLE presence_sessions;
DROP TABLE presence_nodes;
DROP TABLE presence_status;
