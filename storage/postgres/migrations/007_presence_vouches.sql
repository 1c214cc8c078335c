-- A row of presence_sessions was never a session (a socket: the hub's
-- Session): it says that a node vouches for a user, because it holds at
-- least one connection of theirs or is within the grace after the last
-- one. The table takes the name of what it holds, as the code does
-- ("vouched", "vouchers").
--
-- A view keeps the old name for the nodes of the previous version that
-- still run during a rolling deploy: it is a simple view of one table,
-- so their INSERT ... ON CONFLICT DO NOTHING and DELETE go through to
-- presence_vouches. No code of this version uses it; a later migration
-- drops it.

ALTER TABLE presence_sessions RENAME TO presence_vouches;
ALTER TABLE presence_vouches RENAME CONSTRAINT presence_sessions_pkey TO presence_vouches_pkey;
ALTER TABLE presence_vouches RENAME CONSTRAINT presence_sessions_node_id_fkey TO presence_vouches_node_id_fkey;
ALTER INDEX presence_sessions_node RENAME TO presence_vouches_node;
CREATE VIEW presence_sessions AS SELECT user_id, node_id, since FROM presence_vouches;

---- create above / drop below ----

DROP VIEW presence_sessions;
ALTER INDEX presence_vouches_node RENAME TO presence_sessions_node;
ALTER TABLE presence_vouches RENAME CONSTRAINT presence_vouches_node_id_fkey TO presence_sessions_node_id_fkey;
ALTER TABLE presence_vouches RENAME CONSTRAINT presence_vouches_pkey TO presence_sessions_pkey;
ALTER TABLE presence_vouches RENAME TO presence_sessions;
