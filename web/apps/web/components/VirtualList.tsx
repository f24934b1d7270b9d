import {
  useCallback,
  useEffect,
  useLayoutEffect,
  useMemo,
  useRef,
  useState,
  type ReactNode,
} from 'react';
import {
  captureAnchor,
  computeLayout,
  isNearBottom,
  restoreAnchor,
  visibleRange,
  type Anchor,
} from '../lib/virtual';

/** Rendered beyond the viewport, each way. */
const OVERSCAN_PX = 600;
/** Closer than this to the top asks for older rows. */
const TOP_THRESHOLD_PX = 300;

export interface VirtualListProps<T> {
  items: readonly T[];
  getKey: (item: T) => string;
  renderItem: (item: T) => ReactNode;
  /** Height of a row not measured yet. */
  estimateHeight: number;
  /** Scrolled near the top (or everything fits): load older rows. */
  onReachTop?: () => void;
  label: string;
  /** Shown above the first row (e.g. "Loading older messages…"). */
  header?: ReactNode;
}

/**
 * A bottom-anchored list that renders only the rows on (or near) the screen: it starts at the
 * newest row, stays at the bottom while you are there, and keeps its place when older rows are
 * added above or rows change height.
 */
export function VirtualList<T>({
  items,
  getKey,
  renderItem,
  estimateHeight,
  onReachTop,
  label,
  header,
}: VirtualListProps<T>) {
  const scroller = useRef<HTMLDivElement>(null);
  const [heights, setHeights] = useState<ReadonlyMap<string, number>>(() => new Map());
  const [viewport, setViewport] = useState({ top: 0, height: 800 });
  const stickToBottom = useRef(true);
  const anchor = useRef<Anchor | null>(null);

  const keys = useMemo(() => items.map(getKey), [items, getKey]);
  const layout = useMemo(
    () => computeLayout(keys, heights, estimateHeight),
    [keys, heights, estimateHeight],
  );

  // One observer measures every rendered row.
  const observer = useRef<ResizeObserver | null>(null);
  useEffect(() => {
    const resize = new ResizeObserver((entries) => {
      const seen: [string, number][] = [];
      for (const entry of entries) {
        const key = (entry.target as HTMLElement).dataset.key;
        const height = Math.ceil(entry.borderBoxSize[0]?.blockSize ?? entry.contentRect.height);
        if (key && height > 0) seen.push([key, height]);
      }
      setHeights((current) => {
        let next: Map<string, number> | null = null;
        for (const [key, height] of seen) {
          if (current.get(key) !== height) {
            next ??= new Map(current);
            next.set(key, height);
          }
        }
        return next ?? current;
      });
    });
    observer.current = resize;
    return () => resize.disconnect();
  }, []);

  const measure = useCallback((element: HTMLDivElement | null) => {
    if (!element) return;
    observer.current?.observe(element);
    return () => observer.current?.unobserve(element);
  }, []);

  // After every layout change: stay at the bottom, or keep the row at the top where it was.
  useLayoutEffect(() => {
    const element = scroller.current;
    if (!element) return;
    let target: number | null = null;
    if (stickToBottom.current) {
      target = Math.max(0, layout.total - element.clientHeight);
    } else if (anchor.current) {
      target = restoreAnchor(layout, keys, anchor.current);
    }
    if (target !== null && Math.abs(element.scrollTop - target) > 1) {
      element.scrollTop = target;
    }
    setViewport({ top: element.scrollTop, height: element.clientHeight });
    if (layout.total <= element.clientHeight) onReachTop?.();
  }, [layout, keys, onReachTop]);

  // The viewport itself changes size (window resize, on-screen keyboard).
  useEffect(() => {
    const element = scroller.current;
    if (!element) return;
    const resize = new ResizeObserver(() => {
      if (stickToBottom.current) element.scrollTop = element.scrollHeight;
      setViewport({ top: element.scrollTop, height: element.clientHeight });
    });
    resize.observe(element);
    return () => resize.disconnect();
  }, []);

  const onScroll = useCallback(() => {
    const element = scroller.current;
    if (!element) return;
    stickToBottom.current = isNearBottom(element.scrollTop, element.clientHeight, layout.total);
    anchor.current = captureAnchor(layout, keys, element.scrollTop);
    setViewport({ top: element.scrollTop, height: element.clientHeight });
    if (element.scrollTop < TOP_THRESHOLD_PX) onReachTop?.();
  }, [layout, keys, onReachTop]);

  const { start, end } = visibleRange(layout, viewport.top, viewport.height, OVERSCAN_PX);
  const rows: ReactNode[] = [];
  for (let index = start; index < end; index += 1) {
    const item = items[index];
    const key = keys[index];
    if (item === undefined || key === undefined) continue;
    rows.push(
      <div
        key={key}
        ref={measure}
        data-key={key}
        role="listitem"
        aria-setsize={items.length}
        aria-posinset={index + 1}
        className="vlist__row"
        style={{ transform: `translateY(${layout.offsets[index]}px)` }}
      >
        {renderItem(item)}
      </div>,
    );
  }

  return (
    <div
      ref={scroller}
      className="vlist"
      onScroll={onScroll}
      tabIndex={0}
      role="region"
      aria-label={label}
    >
      {header ? <div className="vlist__header">{header}</div> : null}
      <div role="list" className="vlist__canvas" style={{ height: layout.total }}>
        {rows}
      </div>
    </div>
  );
}
