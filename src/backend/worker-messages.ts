/** IPC messages a worker sends its primary (besides cluster's own 'listening'). */
export type WorkerMessage = {type: 'listen-error'; code: string; message: string}

export function isWorkerMessage(value: unknown): value is WorkerMessage {
  return typeof value === 'object' && value !== null && (value as {type?: unknown}).type === 'listen-error'
}
