-- The webhook outbox: the events of each change, one row per receiver,
-- written in the change's transaction and deleted once delivered. seq
-- gives each receiver its events in the order the changes committed.

CREATE TABLE presence_webhook_outbox (
    seq      bigserial   PRIMARY KEY,
    target   text        NOT NULL,
    event_id text        NOT NULL,
    type     text        NOT NULL,
    at       timestamptz NOT NULL,
    -- The user as others see them after the change.
    presence jsonb       NOT NULL,
    UNIQUE (target, event_id)
);

CREATE INDEX presence_webhook_outbox_target ON presence_webhook_outbox (target, seq);

---- create above / drop below ----

DROP TABLE presence_webhook_outbox;
