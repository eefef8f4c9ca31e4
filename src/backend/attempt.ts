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
    try {
      await workers.whenLive(Math.max(0, deadline - Date.now()))
    } catch {
      throw neverTaken(timeoutMs)
    }
    try {
      return await exchange(deadline - Date.now())
    } catch (error) {
      if (error instanceof ImgscaleError && error.code === 'timeout') workers.replaceIfStuck(id)
      if (!(error instanceof NotTaken)) throw error
      // Handed to a worker that had just died, or is frozen: it never ran, so another may take it while time is left.
      if (deadline - Date.now() <= FIXED.retryDelayMs) throw neverTaken(timeoutMs)
      await setTimeout(FIXED.retryDelayMs)
    }
  }
}

/** The deadline passed with no worker taking the job: nothing says the image is at fault, so it is not charged an attempt (callers check NotTaken). */
const neverTaken = (timeoutMs: number): NotTaken =>
  new NotTaken(`No server B worker took the image within ${timeoutMs / 1000} s (--task-timeout): the workers were not answering or were being replaced. The image itself was never processed.`)
