// The gateway's HTTP API as the app uses it: JSON in and out, the API key on every call.
//
// The key lives in sessionStorage (this tab only) and travels only in the Authorization
// header. EventSource cannot send headers, so the events URL carries the short-lived signed
// token that POST /v1/streams returns instead: the key itself never goes into a URL.

const KEY_STORAGE = 'midstream.apiKey';

/** An OpenAI-shaped error answer (`{"error": {"message", "type", "code"}}`), or a network failure. */
export class ApiError extends Error {
  constructor(status, message, type = null, code = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.type = type;
    this.code = code;
  }
}

export class Api {
  constructor() {
    /** Called with the error whenever the gateway answers 401 (no key, or a wrong one). */
    this.onUnauthorized = () => {};
  }

  get key() {
    return sessionStorage.getItem(KEY_STORAGE) || '';
  }

  set key(value) {
    if (value) sessionStorage.setItem(KEY_STORAGE, value);
    else sessionStorage.removeItem(KEY_STORAGE);
  }

  /**
   * Whether the gateway accepts us, and the models it routes: `GET /v1/models` answers 200
   * with the current key (or none), 401 when a key is needed or the one we have is refused.
   */
  async checkAccess() {
    try {
      const models = await this.request('GET', '/v1/models', undefined, { quiet: true });
      return { ok: true, models: (models?.data ?? []).map((model) => model.id).filter(Boolean) };
    } catch (error) {
      if (error.status === 401) return { ok: false, keyNeeded: true, error };
      return { ok: false, keyNeeded: false, error };
    }
  }

  /** `POST /v1/streams`: starts a stream; answers `{id, events_url, cancel_url, expires_at}`. */
  startStream(body) {
    return this.request('POST', '/v1/streams', body);
  }

  /** `POST <cancel_url>`: asks the server to stop the stream (202 `{id, status: "cancelling"}`). */
  cancel(cancelUrl) {
    return this.request('POST', cancelUrl);
  }

  /** One page of recorded streams, newest first. */
  listStreams({ limit = 20, after = null } = {}) {
    const query = new URLSearchParams({ limit: String(limit) });
    if (after) query.set('after', after);
    return this.request('GET', `/v1/streams?${query}`);
  }

  /** The record of one stream. */
  getStream(id) {
    return this.request('GET', `/v1/streams/${encodeURIComponent(id)}`);
  }

  async request(method, path, body, { quiet = false } = {}) {
    const headers = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (this.key) headers.Authorization = `Bearer ${this.key}`;
    let response;
    try {
      response = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
      });
    } catch (cause) {
      throw new ApiError(0, `The gateway is unreachable (${cause.message}).`);
    }
    const text = await response.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {
      // Not JSON (a proxy's error page, say): the status and the raw text still say enough.
    }
    if (!response.ok) {
      const detail = json?.error ?? {};
      const error = new ApiError(
        response.status,
        detail.message || text.slice(0, 200) || `${response.status} ${response.statusText}`,
        detail.type ?? null,
        detail.code ?? null,
      );
      if (response.status === 401 && !quiet) this.onUnauthorized(error);
      throw error;
    }
    return json;
  }
}
