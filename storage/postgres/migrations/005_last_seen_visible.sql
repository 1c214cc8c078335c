-- A user may hide their last_seen from others (last_seen_visible false):
-- others then read it as null and learn only whether they are online.

ALTER TABLE presence_status ADD COLUMN hide_last_seen boolean NOT NULL DEFAULT false;

---- create above / drop below ----

ALTER TABLE presence_status DROP COLUMN hide_last_seen;
