/**
 * The arithmetic of a virtual list with rows of different heights: rows are measured once they
 * render and estimated until then; only the rows within (or near) the viewport are rendered.
 * Scrolling is kept steady when rows are added above (older pages) or change height, by
 * remembering which row was at the top and where.
 */
export interface Layout {
  /** Top of each row. */
  offsets: number[];
  heights: number[];
  total: number;
}

export function computeLayout(
  keys: readonly string[],
  measured: ReadonlyMap<string, number>,
  estimate: number,
): Layout {
  const offsets = new Array<number>(keys.length);
  const heights = new Array<number>(keys.length);
  let top = 0;
  keys.forEach((key, i) => {
    const height = measured.get(key) ?? estimate;
    offsets[i] = top;
    heights[i] = height;
    top += height;
  });
  return { offsets, heights, total: top };
}

/** The first row whose bottom is below `y` (rows.length when none). */
export function rowAt(layout: Layout, y: number): number {
  let lo = 0;
  let hi = layout.offsets.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (layout.offsets[mid]! + layout.heights[mid]! > y) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** Rows to render: `[start, end)`, covering the viewport plus `overscan` pixels each way. */
export function visibleRange(
  layout: Layout,
  scrollTop: number,
  viewportHeight: number,
  overscan: number,
): { start: number; end: number } {
  const count = layout.offsets.length;
  if (count === 0) return { start: 0, end: 0 };
  const start = Math.min(rowAt(layout, Math.max(0, scrollTop - overscan)), count - 1);
  let end = rowAt(layout, scrollTop + viewportHeight + overscan);
  end = Math.min(count, end + 1);
  return { start, end: Math.max(end, start + 1) };
}

/** The row at the top of the viewport and how far into it the viewport starts. */
export interface Anchor {
  key: string;
  delta: number;
}

export function captureAnchor(
  layout: Layout,
  keys: readonly string[],
  scrollTop: number,
): Anchor | null {
  const index = rowAt(layout, scrollTop);
  const key = keys[index];
  if (key === undefined) return null;
  return { key, delta: scrollTop - layout.offsets[index]! };
}

/** The scroll position that puts the anchor row where it was; `null` if it is gone. */
export function restoreAnchor(
  layout: Layout,
  keys: readonly string[],
  anchor: Anchor,
): number | null {
  const index = keys.indexOf(anchor.key);
  if (index < 0) return null;
  return layout.offsets[index]! + anchor.delta;
}

export function isNearBottom(
  scrollTop: number,
  viewportHeight: number,
  total: number,
  threshold = 48,
): boolean {
  return total - (scrollTop + viewportHeight) <= threshold;
}
