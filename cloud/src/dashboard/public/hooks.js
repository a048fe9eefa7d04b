// Small hooks the pages share: loading a resource, polling, the live fleet.
import { useEffect, useState, useCallback } from 'preact/hooks';
import { subscribeFleet, fleetState } from './fleet-store.js';

/** Loads `fn()` on mount and when deps change; `reload` fetches again. */
export function useResource(fn, deps) {
  const [state, setState] = useState({ loading: true, error: null, data: undefined });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    fn().then(
      (data) => live && setState({ loading: false, error: null, data }),
      (error) => live && setState((s) => ({ loading: false, error, data: s.data })),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

/** Fetches `fn()` now and again `everyMs` after each answer while `active`. */
export function usePoll(fn, everyMs, active, deps) {
  const [state, setState] = useState({ loading: true, error: null, data: undefined });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    let timer;
    const run = () =>
      fn().then(
        (data) => {
          if (!live) return;
          setState({ loading: false, error: null, data });
          if (active(data)) timer = setTimeout(run, everyMs);
        },
        (error) => {
          if (!live) return;
          setState((s) => ({ loading: false, error, data: s.data }));
          timer = setTimeout(run, everyMs * 4);
        },
      );
    void run();
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

/** The live fleet; re-renders at most once per animation frame. */
export function useFleet() {
  const [, setVersion] = useState(0);
  useEffect(() => {
    let frame = 0;
    const off = subscribeFleet(() => {
      if (frame === 0)
        frame = requestAnimationFrame(() => {
          frame = 0;
          setVersion(fleetState().version);
        });
    });
    return () => {
      cancelAnimationFrame(frame);
      off();
    };
  }, []);
  return fleetState();
}
