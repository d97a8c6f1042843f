-- Browser streams (the EventSource API).
--
-- `settings` holds values every gateway process sharing this database must agree on: the
-- secret that signs `events_url` tokens when MIDSTREAM_STREAM_SECRET is not set is generated
-- by the first process and read by the others, so a URL signed by one is valid on all of them
-- and after a restart.
CREATE TABLE settings (
    name  TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

-- The `seq` of the stream's last EventSource event (its `done`), written when the stream
-- closes: a reconnect that already saw it is answered 204 even when no event log holds the
-- stream any more.
ALTER TABLE streams ADD COLUMN last_event_seq BIGINT;

-- The history view lists a key's streams newest first; ids are UUIDv7, so their order is the
-- order of creation.
CREATE INDEX streams_by_key_id ON streams (api_key_id, id) WHERE api_key_id IS NOT NULL;
