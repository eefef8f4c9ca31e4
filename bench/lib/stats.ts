/** Percentiles and medians of latency samples. */

/** The p-th percentile (0..100) of the samples, nearest rank. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN
  const sorted = [...samples].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

export const median = (samples: readonly number[]): number => percentile(samples, 50)

/**
 * Runs `task(i)` for i = 0..count-1 with `concurrency` in flight, and returns
 * each one's latency (ms) and the wall time of the whole batch.
 */
export async function drive(count: number, concurrency: number, task: (i: number) => Promise<void>): Promise<{latencies: number[]; seconds: number}> {
  const latencies: number[] = []
  let next = 0
  const started = performance.now()
  await Promise.all(
    Array.from({length: Math.min(concurrency, count)}, async () => {
      while (next < count) {
        const i = next++
        const t0 = performance.now()
        await task(i)
        latencies.push(performance.now() - t0)
      }
    }),
  )
  return {latencies, seconds: (performance.now() - started) / 1000}
}

export function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0)
}
