/**
 * Retry-safe uploads (contract section 11). An upload sent with an
 * `Idempotency-Key` makes a task at most once: the task records the key
 * (hashed, with the API key that sent it) and a fingerprint of the request,
 * in the same write that stores it, so the pair outlives restarts and is
 * shared by every front end of one store. The key lives as long as its task
 * does; a deleted or expired task frees it. While an upload under a key is
 * being stored, the key is held, and a second upload under it is refused
 * with Retry-After rather than racing it to a second task.
 */
import {createHash} from 'node:crypto'

import {FIXED} from '../config.js'
import {ImgscaleError} from '../errors.js'
import type {TaskBackend} from './backend.js'
import type {NewTask} from './store.js'
import type {Task} from './task.js'

export interface Idempotency {
  /** SHA-256 (hex) of the API key's digest and the client's key: neither is stored as sent. */
  key: string
  /** SHA-256 (hex) of what the request asks for: the image's bytes, the options and the callback. */
  fingerprint: string
}

/** What holds a key: nothing (now reserved for this upload), an upload being stored, or a task. */
export type KeyClaim = {state: 'reserved'} | {state: 'held'} | {state: 'taken'; task: Task}

/** 1 to 255 visible ASCII characters, as the contract says. */
const KEY = /^[\x21-\x7e]{1,255}$/

/** The header's key, scoped by who sent it (`client`: the API key's digest, '' without keys); undefined without the header. */
export function idempotencyKeyOf(header: string | undefined, client: string): string | undefined {
  if (header === undefined) return undefined
  if (!KEY.test(header)) {
    throw new ImgscaleError('invalid_request', 'Idempotency-Key must be 1 to 255 visible ASCII characters (no spaces).')
  }
  return sha256(`${client}\n${header}`)
}

export function sha256(...parts: Array<string | Buffer>): string {
  const hash = createHash('sha256')
  for (const part of parts) hash.update(part)
  return hash.digest('hex')
}

/**
 * `submit`, once per key: a new task when the key is free; the task made
 * under it before (`replayed`) when the request is the same; `409
 * idempotency_conflict` when it is another request, or when the first is
 * still being stored.
 */
export async function submitOnce(tasks: TaskBackend, upload: NewTask & {idempotency: Idempotency}): Promise<{task: Task; replayed: boolean}> {
  const {key, fingerprint} = upload.idempotency
  const claim = await tasks.claimKey(key)
  if (claim.state === 'held') {
    throw new ImgscaleError('idempotency_conflict', 'An upload with this Idempotency-Key is still being stored; try again shortly.', {
      retryAfter: FIXED.retryAfterSeconds,
    })
  }
  if (claim.state === 'taken') {
    if (claim.task.idempotency?.fingerprint !== fingerprint) {
      throw new ImgscaleError('idempotency_conflict', `This Idempotency-Key was used for another request (task ${claim.task.id}); use a new key for a new upload.`)
    }
    return {task: claim.task, replayed: true}
  }
  try {
    return {task: await tasks.submit(upload), replayed: false}
  } finally {
    await tasks.releaseKey(key)
  }
}
