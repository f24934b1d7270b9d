/**
 * Formatters made once: `toLocaleTimeString(locale, options)` builds a new `Intl.DateTimeFormat`
 * on every call, which made the times of a chat's rows the bulk of opening it (the web
 * benchmark, `scripts/bench web`).
 */
let formats: {
  time: Intl.DateTimeFormat;
  weekday: Intl.DateTimeFormat;
  date: Intl.DateTimeFormat;
} | null = null;

function dateFormats() {
  formats ??= {
    time: new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' }),
    weekday: new Intl.DateTimeFormat(undefined, { weekday: 'short' }),
    date: new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'numeric', day: 'numeric' }),
  };
  return formats;
}

/** Short time for a message: `14:05` today, `Mon 14:05` this week, else the date. */
export function formatTime(iso: string, now: Date = new Date()): string {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return '';
  const { time, weekday, date: day } = dateFormats();
  const clock = time.format(date);
  const sameDay = date.toDateString() === now.toDateString();
  if (sameDay) return clock;
  const ageDays = (now.getTime() - date.getTime()) / 86_400_000;
  if (ageDays < 6) return `${weekday.format(date)} ${clock}`;
  return day.format(date);
}

/** Up to two initials for an avatar. */
export function initials(name: string): string {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  const letters = parts.length > 1 ? [parts[0]!, parts[parts.length - 1]!] : parts;
  return letters.map((p) => [...p][0]!.toUpperCase()).join('') || '?';
}

/** A byte count for people: `980 B`, `14.2 KB`, `3.1 MB` (powers of 1024). */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '';
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KB', 'MB', 'GB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}
