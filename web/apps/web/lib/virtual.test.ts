import { describe, expect, it } from 'vitest';
import {
  captureAnchor,
  computeLayout,
  isNearBottom,
  restoreAnchor,
  rowAt,
  visibleRange,
} from './virtual';

const keys = (n: number, from = 0) => Array.from({ length: n }, (_, i) => `k${i + from}`);

describe('virtual list layout', () => {
  it('stacks measured rows and estimates the others', () => {
    const layout = computeLayout(['a', 'b', 'c'], new Map([['b', 100]]), 50);
    expect(layout).toEqual({ offsets: [0, 50, 150], heights: [50, 100, 50], total: 200 });
  });

  it('renders only the rows near the viewport', () => {
    const layout = computeLayout(keys(10_000), new Map(), 40);
    expect(layout.total).toBe(400_000);
    const range = visibleRange(layout, 200_000, 800, 400);
    // (800 + 2 × 400) / 40 = 40 rows, plus one at each edge at most.
    expect(range.start).toBe(4990);
    expect(range.end - range.start).toBeLessThanOrEqual(42);
    expect(visibleRange(layout, 0, 800, 400)).toEqual({ start: 0, end: 31 });
    expect(visibleRange(computeLayout([], new Map(), 40), 0, 800, 400)).toEqual({
      start: 0,
      end: 0,
    });
  });

  it('finds the row at a height', () => {
    const layout = computeLayout(keys(3), new Map(), 10);
    expect([0, 9, 10, 29, 30].map((y) => rowAt(layout, y))).toEqual([0, 0, 1, 2, 3]);
  });

  it('keeps the row at the top in place when older rows are added above', () => {
    const before = keys(20, 50);
    const layout = computeLayout(before, new Map(), 40);
    const anchor = captureAnchor(layout, before, 130)!;
    expect(anchor).toEqual({ key: 'k53', delta: 10 });
    const after = [...keys(50), ...before];
    const grown = computeLayout(after, new Map([['k0', 200]]), 40);
    expect(restoreAnchor(grown, after, anchor)).toBe(200 + 49 * 40 + 3 * 40 + 10);
    expect(restoreAnchor(grown, ['x'], anchor)).toBeNull();
  });

  it('knows when the viewport is at the bottom', () => {
    expect(isNearBottom(1200, 800, 2000)).toBe(true);
    expect(isNearBottom(1100, 800, 2000)).toBe(false);
  });
});
