-- A node that stops gracefully says so, so that the node whose sweep
-- later removes it can tell a stop from a death in its log.

ALTER TABLE presence_nodes ADD COLUMN stopped boolean NOT NULL DEFAULT false;

---- create above / drop below ----

ALTER TABLE presence_nodes DROP COLUMN stopped;
