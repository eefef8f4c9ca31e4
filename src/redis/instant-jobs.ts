/**
 * The bytes of `POST /resize` in distributed mode (contract section 9). They
 * are never task data: the image waits on a key of its own while the
 * request runs (expiring on its own should the front end die), a worker
 * host answers with the reply frame on another key that expires in
 * seconds, and the front end takes that answer and deletes both. Nothing of
 * it is in the task keys; the BullMQ job carries only the plan.
 */
import type {Redis} from 'ioredis'

import {resultOf, type Result} from '../backend/client.js'
import {FIXED} from '../config.js'
import {ImgscaleError} from '../errors.js'
import {encodeFrame, FrameDecoder, FrameType, type Frame} from '../protocol/frame.js'
import {keys} from './keys.js'

/** BullMQ job name of a `/resize`; the plan travels as the job's data. */
export const INSTANT_JOB = 'instant'

export class InstantJobs {
  constructor(private readonly redis: Redis) {}

  /** The image, waiting for a host, for at most `ttlMs`. */
  async put(id: string, image: Buffer, ttlMs: number): Promise<void> {
    await this.redis.set(keys.instantImage(id), image, 'PX', ttlMs)
  }

  /** The image for a host to process; null when the request has ended (answered, cancelled, timed out). */
  image(id: string): Promise<Buffer | null> {
    return this.redis.getBuffer(keys.instantImage(id))
  }

  /** A host's answer: stored, and the front end woken, only while the request still waits. */
  async answer(id: string, outcome: Result | ImgscaleError): Promise<boolean> {
    const reply =
      outcome instanceof ImgscaleError
        ? encodeFrame(FrameType.Error, {id, code: outcome.code, message: outcome.message})
        : encodeFrame(FrameType.Result, outcome.header, outcome.body)
    const stored = await this.redis.eval(
      ANSWER,
      2,
      keys.instantImage(id),
      keys.instantAnswer(id),
      Buffer.concat(reply),
      FIXED.instantAnswerTtlMs,
      keys.instantAnswered,
      id,
    )
    return stored === 1
  }

  /** Takes the answer (it is deleted as it is read): the result, or the error thrown. Undefined: no answer yet. */
  async take(id: string, maxResultBytes: number): Promise<Result | undefined> {
    const raw = await this.redis.getdelBuffer(keys.instantAnswer(id))
    if (raw === null) return undefined
    let frame: Frame | undefined
    new FrameDecoder({maxHeaderBytes: FIXED.maxFrameHeaderBytes, maxBodyBytes: maxResultBytes}, (decoded) => (frame = decoded)).push(raw)
    if (!frame) throw new ImgscaleError('internal', 'A worker host stored an answer that could not be read.')
    return resultOf(frame)
  }

  /** The request ended: whatever is left of it goes. */
  async drop(id: string): Promise<void> {
    await this.redis.del(keys.instantImage(id), keys.instantAnswer(id))
  }
}

/** KEYS: image, answer. ARGV: the reply, its expiry in ms, the channel, the id. */
const ANSWER = `
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
`
