// How numbers and times read on screen.

/** "85 ms", "1.24 s", "2 min 05 s". */
export function formatMs(ms) {
  if (!Number.isFinite(ms)) return '–';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.round((ms % 60_000) / 1000);
  return `${minutes} min ${String(seconds).padStart(2, '0')} s`;
}

/** "42.1" tokens per second. */
export function formatRate(perSecond) {
  if (!Number.isFinite(perSecond)) return '–';
  return perSecond >= 100 ? String(Math.round(perSecond)) : perSecond.toFixed(1);
}

/** "just now", "5 min ago", "3 h ago", else a date: for a list of recent streams. */
export function formatWhen(epochMs, now = Date.now()) {
  if (!Number.isFinite(epochMs)) return '';
  const ago = now - epochMs;
  if (ago < 45_000) return 'just now';
  if (ago < 3_600_000) return `${Math.round(ago / 60_000)} min ago`;
  if (ago < 86_400_000) return `${Math.round(ago / 3_600_000)} h ago`;
  return new Date(epochMs).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/** The full local date and time, for a tooltip. */
export function formatDate(epochMs) {
  return Number.isFinite(epochMs) ? new Date(epochMs).toLocaleString() : '';
}
