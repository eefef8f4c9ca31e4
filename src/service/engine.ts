import type {PoolHealth} from '../backend/pool.js'
import type {DiskState} from '../storage/disk-state.js'
import type {TaskBackend} from '../tasks/backend.js'

/**
 * What server A runs on: where tasks live and who processes them. Embedded
 * (one data directory, this process's workers) or shared (Redis, worker
 * hosts anywhere); server A does not know which.
 */
export interface Engine {
  tasks: TaskBackend
  /** Where uploads are spooled while they arrive, and whether that disk has room. */
  spoolDir: string
  disk: DiskState
  workers(): Promise<PoolHealth>
  /** For the ready line: `2 workers, backend 127.0.0.1:41873`. */
  summary: string
  /** Shutdown: nothing new starts; work held gets `graceMs` to finish. */
  drain(graceMs: number): Promise<void>
  close(): Promise<void>
}
