import {setTimeout} from 'node:timers/promises'

import {FIXED} from '../config.js'
import {ImgscaleError} from '../errors.js'
import {NotTaken} from './client.js'
import type {WorkerPool} from './pool.js'

export type Workers = Pick<WorkerPool, 'whenLive' | 'replaceIfStuck'>

/**
 * One try of a job on server B, whichever way its bytes travel: waits for a
 * worker that can take it, sends it again (at no cost) while no worker takes
 * it, and, when the deadline passes on a worker that did, has that worker
 * replaced. `exchange` gets the time left. Retrying a worker lost while it
 * ran the job is the caller's rule.
 */
export async function attemptOnServerB<T>(workers: Workers, id: string, timeoutMs: number, exchange: (remainingMs: number) => Promise<T>): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    await workers.whenLive(Math.max(0, deadline - Date.now()))
    try {
      return await exchange(deadline - Date.now())
    } catch (error) {
      if (error instanceof ImgscaleError && error.code === 'timeout') workers.replaceIfStuck(id)
      // Handed to a worker that had just died, or is frozen: it never ran, so another may take it while time is left.
      if (!(error instanceof NotTaken) || deadline - Date.now() <= FIXED.retryDelayMs) throw error
      await setTimeout(FIXED.retryDelayMs)
    }
  }
}
