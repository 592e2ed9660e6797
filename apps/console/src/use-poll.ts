import { useCallback, useEffect, useRef, useState } from "preact/hooks";

export interface Poll<T> {
  data: T | null;
  error: Error | null;
  /** Reads again now (after an action). */
  refresh: () => void;
}

/**
 * Calls `read` now and every `everyMs` while the page is visible, keeping the last good
 * answer on screen when a read fails. One read at a time; none after unmount.
 */
export function usePoll<T>(read: (signal: AbortSignal) => Promise<T>, everyMs: number): Poll<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<Error | null>(null);
  const readRef = useRef(read);
  readRef.current = read;
  const busy = useRef(false);
  const alive = useRef(true);
  const controller = useRef(new AbortController());

  const tick = useCallback(async () => {
    if (busy.current || !alive.current) return;
    busy.current = true;
    try {
      const value = await readRef.current(controller.current.signal);
      if (alive.current) {
        setData(value);
        setError(null);
      }
    } catch (caught) {
      if (alive.current) setError(caught instanceof Error ? caught : new Error(String(caught)));
    } finally {
      busy.current = false;
    }
  }, []);

  useEffect(() => {
    alive.current = true;
    controller.current = new AbortController();
    void tick();
    const timer = setInterval(() => {
      if (document.visibilityState === "visible") void tick();
    }, everyMs);
    return () => {
      alive.current = false;
      clearInterval(timer);
      controller.current.abort();
    };
  }, [tick, everyMs]);

  return { data, error, refresh: () => void tick() };
}
