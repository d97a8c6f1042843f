-- API keys that expire and carry their own limits, and a generation that every gateway process
-- watches, so a revocation or a first key reaches all of them within a second.
--
-- `expires_at` is Unix milliseconds; a key past it is refused like a revoked one. `rpm` and
-- `max_streams` are the key's own limits (NULL: only the gateway-wide limits apply).
ALTER TABLE api_keys ADD COLUMN expires_at BIGINT;
ALTER TABLE api_keys ADD COLUMN rpm BIGINT CHECK (rpm > 0);
ALTER TABLE api_keys ADD COLUMN max_streams BIGINT CHECK (max_streams > 0);

-- One row. Each process caches validated keys and re-reads this number every 500 ms; when it
-- changed, cached validations made under an older generation are no longer trusted. A trigger
-- bumps it on any change to `api_keys`, so a key revoked by hand in SQL counts too.
CREATE TABLE api_key_generation (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation BIGINT NOT NULL
);
INSERT INTO api_key_generation (id, generation) VALUES (1, 0);

CREATE FUNCTION bump_api_key_generation() RETURNS trigger AS $$
BEGIN
    UPDATE api_key_generation SET generation = generation + 1 WHERE id = 1;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER api_keys_changed AFTER INSERT OR UPDATE OR DELETE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION bump_api_key_generation();
