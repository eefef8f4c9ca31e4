/** IPC messages a worker sends its primary (besides cluster's own 'listening'). */
export type WorkerMessage =
  | {type: 'listen-error'; code: string; message: string}
  /** Which worker holds which job, so the primary can replace one stuck past a task's deadline. */
  | {type: 'job-start'; id: string}
  | {type: 'job-end'; id: string}

const TYPES = new Set<unknown>(['listen-error', 'job-start', 'job-end'])

export function isWorkerMessage(value: unknown): value is WorkerMessage {
  return typeof value === 'object' && value !== null && TYPES.has((value as {type?: unknown}).type)
}
