-- A tool call never stays `running` once its stream has ended.
--
-- `cancelled`: the gateway cancelled the call (the client left, the upstream refused, the
-- stream failed or was cut at shutdown); `/metrics` counts it `cancelled` too.
-- `interrupted`: the process stopped with the call running (set at the next start, with its
-- stream). SQLite cannot alter a CHECK constraint, so the table is rebuilt.
CREATE TABLE tool_calls_new (
    stream_id     TEXT NOT NULL REFERENCES streams (id) ON DELETE CASCADE,
    call_id       TEXT NOT NULL,
    tool          TEXT NOT NULL,
    source        TEXT NOT NULL CHECK (source IN ('intent', 'model')),
    intent_id     TEXT,
    model_call_id TEXT,
    arguments     TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled', 'interrupted')),
    result        TEXT,
    error_code    TEXT,
    error_message TEXT,
    cached        BOOLEAN,
    started_ms    DOUBLE PRECISION NOT NULL,
    duration_ms   DOUBLE PRECISION,
    PRIMARY KEY (stream_id, call_id)
);
INSERT INTO tool_calls_new SELECT * FROM tool_calls;
DROP TABLE tool_calls;
ALTER TABLE tool_calls_new RENAME TO tool_calls;
CREATE INDEX tool_calls_by_tool ON tool_calls (tool, status);

-- Whatever path closes a stream (a finish, a failure, a dropped client, a shutdown), its calls
-- still `running` end `cancelled` in the same statement: the gateway aborts them when the
-- stream ends, and their outcomes are not waited for.
CREATE TRIGGER streams_closed_cancel_tool_calls AFTER UPDATE OF status ON streams
    WHEN NEW.status <> 'streaming'
BEGIN
    UPDATE tool_calls SET status = 'cancelled', error_code = 'cancelled',
        error_message = 'the stream ended before the call'
    WHERE stream_id = NEW.id AND status = 'running';
END;

-- Calls left `running` by earlier versions under streams that had already ended.
UPDATE tool_calls SET status = 'cancelled', error_code = 'cancelled',
    error_message = 'the stream ended before the call'
WHERE status = 'running'
  AND stream_id IN (SELECT id FROM streams WHERE status <> 'streaming');
