/** IPC messages a worker sends its primary (besides cluster's own 'listening'). */
export type WorkerMessage =
  | {type: 'listen-error'; code: string; message: string}
  /** Which worker holds which job, so the primary can replace one stuck past a task's deadline. */
  | {type: 'job-start'; id: string}
  | {type: 'job-end'; id: string}
  /** The answer to the primary's liveness probe: this worker's event loop still runs. */
  | {type: 'alive'}

/** The primary's liveness probe (pool.ts), answered with `alive`. */
export const PROBE = {type: 'probe'} as const

const TYPES = new Set<unknown>(['listen-error', 'job-start', 'job-end', 'alive'])

export function isWorkerMessage(value: unknown): value is WorkerMessage {
  return typeof value === 'object' && value !== null && TYPES.has((value as {type?: unknown}).type)
}
