-- MidStream record, PostgreSQL flavour. Times are Unix milliseconds; durations are milliseconds.
-- JSON documents are stored as TEXT, exactly as in the SQLite flavour, so one query text serves both.

CREATE TABLE streams (
    id                TEXT PRIMARY KEY,
    api_key_id        TEXT,
    instance_id       TEXT NOT NULL,
    model             TEXT NOT NULL,
    upstream          TEXT NOT NULL,
    upstream_model    TEXT NOT NULL,
    streamed          BOOLEAN NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('streaming', 'completed', 'failed', 'cancelled', 'interrupted')),
    request           TEXT NOT NULL,
    response_text     TEXT,
    finish_reason     TEXT,
    error             TEXT,
    prompt_tokens     BIGINT,
    completion_tokens BIGINT,
    total_tokens      BIGINT,
    ttft_ms           DOUBLE PRECISION,
    duration_ms       DOUBLE PRECISION,
    created_at        BIGINT NOT NULL,
    finished_at       BIGINT
);
CREATE INDEX streams_by_status ON streams (status, instance_id);
CREATE INDEX streams_by_key ON streams (api_key_id, created_at);

CREATE TABLE messages (
    stream_id TEXT NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
    position  INTEGER NOT NULL,
    role      TEXT NOT NULL,
    content   TEXT,
    body      TEXT NOT NULL,
    PRIMARY KEY (stream_id, position)
);

CREATE TABLE events (
    stream_id TEXT NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
    seq       BIGINT NOT NULL,
    kind      TEXT NOT NULL,
    at_ms     DOUBLE PRECISION NOT NULL,
    payload   TEXT NOT NULL,
    PRIMARY KEY (stream_id, seq)
);

CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    prefix     TEXT NOT NULL,
    key_hash   TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);

CREATE TABLE calendar_events (
    id         TEXT PRIMARY KEY,
    title      TEXT NOT NULL,
    attendees  TEXT NOT NULL,
    starts_at  BIGINT NOT NULL,
    ends_at    BIGINT NOT NULL,
    stream_id  TEXT,
    created_at BIGINT NOT NULL,
    CHECK (ends_at > starts_at)
);
CREATE INDEX calendar_events_by_time ON calendar_events (starts_at, ends_at);
