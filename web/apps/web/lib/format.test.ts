import { describe, expect, it } from 'vitest';
import { formatTime } from './format';

describe('formatTime', () => {
  const now = new Date(2026, 10, 28, 15, 30);

  it('says what toLocale*String says, from formatters made once', () => {
    const today = new Date(2026, 10, 28, 9, 5);
    const clock = today.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
    expect(formatTime(today.toISOString(), now)).toBe(clock);
    const monday = new Date(2026, 10, 24, 9, 5);
    expect(formatTime(monday.toISOString(), now)).toBe(
      `${monday.toLocaleDateString(undefined, { weekday: 'short' })} ${monday.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })}`,
    );
    const old = new Date(2026, 0, 2, 9, 5);
    expect(formatTime(old.toISOString(), now)).toBe(old.toLocaleDateString());
  });

  it('is empty for what is not a date', () => {
    expect(formatTime('not a date', now)).toBe('');
  });
});
