-- Stream indexes that hold only the rows their queries look for. Every new stream's row is
-- committed on its own before its first token (DESIGN.md section 6), so each index it enters
-- is one more page written per stream; the full indexes below were entered by every row.
--
-- `streams_by_status` served one query: this instance's streams still `streaming` at start
-- (`mark_interrupted`). Only live streams are in its replacement, so a stream enters it when
-- it opens and leaves when it closes, instead of every finished stream staying in it for good.
DROP INDEX streams_by_status;
CREATE INDEX streams_live ON streams (instance_id) WHERE status = 'streaming';

-- Streams opened without an API key (every stream of a gateway that runs without keys) are
-- never looked up by key.
DROP INDEX streams_by_key;
CREATE INDEX streams_by_key ON streams (api_key_id, created_at) WHERE api_key_id IS NOT NULL;
