-- A tool call never stays `running` once its stream has ended.
--
-- `cancelled`: the gateway cancelled the call (the client left, the upstream refused, the
-- stream failed or was cut at shutdown); `/metrics` counts it `cancelled` too.
-- `interrupted`: the process stopped with the call running (set at the next start, with its
-- stream).
ALTER TABLE tool_calls DROP CONSTRAINT tool_calls_status_check;
ALTER TABLE tool_calls ADD CONSTRAINT tool_calls_status_check
    CHECK (status IN ('running', 'succeeded', 'failed', 'cancelled', 'interrupted'));

-- Whatever path closes a stream (a finish, a failure, a dropped client, a shutdown), its calls
-- still `running` end `cancelled` in the same statement: the gateway aborts them when the
-- stream ends, and their outcomes are not waited for.
CREATE FUNCTION cancel_running_tool_calls() RETURNS trigger AS $$
BEGIN
    UPDATE tool_calls SET status = 'cancelled', error_code = 'cancelled',
        error_message = 'the stream ended before the call'
    WHERE stream_id = NEW.id AND status = 'running';
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER streams_closed_cancel_tool_calls AFTER UPDATE OF status ON streams
    FOR EACH ROW WHEN (NEW.status <> 'streaming') EXECUTE FUNCTION cancel_running_tool_calls();

-- Calls left `running` by earlier versions under streams that had already ended.
UPDATE tool_calls SET status = 'cancelled', error_code = 'cancelled',
    error_message = 'the stream ended before the call'
WHERE status = 'running'
  AND stream_id IN (SELECT id FROM streams WHERE status <> 'streaming');
