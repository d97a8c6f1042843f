-- Inflight analysis: what fired and what ran, queryable (the events table keeps the exact
-- JSON the client was sent; these tables keep the same facts in columns).

CREATE TABLE intents (
    stream_id  TEXT NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
    intent_id  TEXT NOT NULL,
    rule       TEXT NOT NULL,
    scope      TEXT NOT NULL CHECK (scope IN ('prompt', 'output')),
    action     TEXT NOT NULL CHECK (action IN ('tool', 'emit', 'redact', 'stop')),
    -- NULL for redact rules: text hidden from the client is not kept either.
    matched    TEXT,
    captures   TEXT NOT NULL,
    at_ms      DOUBLE PRECISION NOT NULL,
    chars_seen BIGINT NOT NULL,
    PRIMARY KEY (stream_id, intent_id)
);

CREATE TABLE tool_calls (
    stream_id     TEXT NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
    call_id       TEXT NOT NULL,
    tool          TEXT NOT NULL,
    source        TEXT NOT NULL CHECK (source IN ('intent', 'model')),
    intent_id     TEXT,
    model_call_id TEXT,
    arguments     TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
    result        TEXT,
    error_code    TEXT,
    error_message TEXT,
    cached        BOOLEAN,
    started_ms    DOUBLE PRECISION NOT NULL,
    duration_ms   DOUBLE PRECISION,
    PRIMARY KEY (stream_id, call_id)
);
CREATE INDEX tool_calls_by_tool ON tool_calls (tool, status);
