import {ImgscaleError} from '../errors.js'
import type {WorkerPool} from './pool.js'

export type Workers = Pick<WorkerPool, 'whenLive' | 'replaceIfStuck'>

/**
 * One try of a task on server B, whichever way its bytes travel: waits for a
 * worker that can take it and, when the deadline passes, has the worker
 * still holding it replaced. Retrying a lost worker is the caller's rule.
 */
export async function attemptOnServerB<T>(workers: Workers, id: string, timeoutMs: number, exchange: () => Promise<T>): Promise<T> {
  await workers.whenLive(timeoutMs)
  try {
    return await exchange()
  } catch (error) {
    if (error instanceof ImgscaleError && error.code === 'timeout') workers.replaceIfStuck(id)
    throw error
  }
}
