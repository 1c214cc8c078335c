-- Devices and busy_since. A device (an app install, a browser tab) keeps
-- its user online by its REST heartbeats only while it has no socket:
-- device_heartbeats maps a device id to when its latest heartbeat
-- stops counting, in Unix microseconds; heartbeat_until stays the
-- heartbeat of clients that send no device id, as in the seed API.
-- busy_since is when busy last turned true.

ALTER TABLE presence_status ADD COLUMN device_heartbeats jsonb NOT NULL DEFAULT '{}';
ALTER TABLE presence_status ADD COLUMN busy_since timestamptz;
UPDATE presence_status SET busy_since = updated_at WHERE busy;

---- create above / drop below ----

ALTER TABLE presence_status DROP COLUMN busy_since;
ALTER TABLE presence_status DROP COLUMN device_heartbeats;
