// Bytes allocated on the JavaScript heap while a function runs: a measure of work that does not
// depend on the machine's speed and, unlike counting JavaScript blocks (count-steps.ts), sees work
// done inside built-ins whenever they build something (flattening a string built up by `+=`,
// slicing, joining, copying). It is what the heap grew by plus what each garbage collection in
// between freed.

import { GCProfiler, getHeapStatistics } from "node:v8";

/** Bytes allocated while the synchronous `fn` runs (whatever else the thread allocates meanwhile included). */
export function bytesAllocated(fn: () => void): number {
  const profiler = new GCProfiler();
  profiler.start();
  const before = getHeapStatistics().used_heap_size;
  try {
    fn();
  } catch (e) {
    profiler.stop();
    throw e;
  }
  const after = getHeapStatistics().used_heap_size;
  let freed = 0;
  for (const gc of profiler.stop()?.statistics ?? []) freed += gc.beforeGC.heapStatistics.usedHeapSize - gc.afterGC.heapStatistics.usedHeapSize;
  return after - before + freed;
}
