/**
 * Server A's side of the socket (and a worker host's): sends one job, the
 * image in its body, to server B and waits for the result on the same
 * connection. Connections are kept for the next job (connections.ts), one
 * job on a connection at a time.
 */
import {FIXED} from '../config.js'
import {ImgscaleError, type TaskErrorCode} from '../errors.js'
import {encodeFrameHead, FrameDecoder, FrameType, type Frame} from '../protocol/frame.js'
import {parseReply, type JobHeader, type ResultHeader} from '../protocol/messages.js'
import {ConnectionPool} from './connections.js'
import type {BackendAddress} from './pool.js'

/** What a worker may fail a job with (the image's fault); anything else is ours. */
const TASK_ERRORS = new Set<string>(['corrupt_image', 'image_too_large', 'unsupported_media_type', 'timeout'] satisfies TaskErrorCode[])

export interface Result {
  header: ResultHeader
  /** The encoded image. */
  body: Buffer
}

/**
 * What a reply frame means for the job: its result, or (thrown) the error
 * the job ends with. A refusal of our own frame is our bug: `internal`.
 */
export function resultOf(frame: Frame): Result {
  const reply = parseReply(frame)
  if (reply.type === FrameType.Result) return {header: reply.header, body: reply.body}
  if (TASK_ERRORS.has(reply.header.code)) throw new ImgscaleError(reply.header.code, reply.header.message)
  throw new ImgscaleError('internal', `Server B could not process the image: ${reply.header.message}`)
}

/**
 * The job never reached a worker that ran it: no acknowledgement came (the
 * connection went to a worker that had just died, or is frozen), so sending
 * it again is always safe and costs no attempt (issue 20).
 */
export class NotTaken extends ImgscaleError {
  constructor(message: string, options: {cause?: unknown} = {}) {
    super('worker_failed', message, options)
  }
}

/** A worker took the job and was lost holding it: an attempt, unlike a job no worker took (NotTaken). */
export const lostHoldingJob = (error: unknown): error is ImgscaleError => error instanceof ImgscaleError && error.code === 'worker_failed' && !(error instanceof NotTaken)

const notTaken = (when: string, cause?: unknown): NotTaken => new NotTaken(`No worker took the job ${when}.`, {cause})

export interface SendLimits {
  /** Until the job's result must be in, acknowledgement and processing included. */
  timeoutMs: number
  maxResultBytes: number
  /** Aborted: the connection is closed at once (the worker's result goes nowhere) and the call rejects with `cancelled`. */
  signal?: AbortSignal | undefined
}

export class BackendClient {
  private readonly connections: ConnectionPool

  /** `serverIdleMs`: server B's idle timeout (--backend-idle-timeout); a kept connection is closed well before it. */
  constructor(address: BackendAddress, serverIdleMs: number) {
    this.connections = new ConnectionPool(address, Math.min(FIXED.keptConnectionIdleMs, serverIdleMs / 2))
  }

  /** Resolves with the result; rejects with an ImgscaleError. */
  send(job: JobHeader, image: Buffer, {timeoutMs, maxResultBytes, signal}: SendLimits): Promise<Result> {
    return new Promise((resolve, reject) => {
      let settled = false
      let acked = false
      let ackTimer: NodeJS.Timeout | undefined
      const {connection, reused} = this.connections.take()
      const {socket} = connection

      /** `whole`: a reply frame was read to its end, so the connection may carry the next job. */
      const settle = (outcome: {error: ImgscaleError} | {result: Result}, whole: boolean): void => {
        if (settled) return
        settled = true
        clearTimeout(deadline)
        clearTimeout(ackTimer)
        signal?.removeEventListener('abort', abort)
        socket.off('data', onData).off('error', onError).off('close', onClose).off('connect', write)
        if (whole && !decoder.midFrame) this.connections.keep(connection, reused, 'result' in outcome ? outcome.result.header.worker : undefined)
        else this.connections.discard(connection, reused, 'error' in outcome && outcome.error.code === 'worker_failed')
        if ('error' in outcome) reject(outcome.error)
        else resolve(outcome.result)
      }
      const fail = (error: ImgscaleError): void => settle({error}, false)

      // A timeout is charged only to a job a worker really ran.
      const deadline = setTimeout(
        () => fail(acked ? new ImgscaleError('timeout', 'Processing took longer than the time limit (--task-timeout).') : notTaken('before its deadline')),
        timeoutMs,
      )

      const abort = (): void => fail(new ImgscaleError('cancelled', 'The request was cancelled before its image was processed.'))
      signal?.addEventListener('abort', abort, {once: true})

      const decoder = new FrameDecoder({maxHeaderBytes: FIXED.maxFrameHeaderBytes, maxBodyBytes: maxResultBytes}, (frame) => {
        if (frame.type === FrameType.Ack) {
          acked = true
          clearTimeout(ackTimer)
          return
        }
        let result: Result
        try {
          result = resultOf(frame)
        } catch (error) {
          // A reply that cannot be read falls through to the 'data' handler: `internal`.
          if (!(error instanceof ImgscaleError)) throw error
          return settle({error}, true)
        }
        settle({result}, true)
      })

      const write = (): void => {
        // Head and image as separate writes: the image is not copied.
        // The worker must say it has the job soon after it is sent (loopback carries even 50 MiB in well under a second).
        ackTimer = setTimeout(() => fail(notTaken(`within ${FIXED.jobAckTimeoutMs / 1000} s`)), FIXED.jobAckTimeoutMs)
        socket.cork()
        socket.write(encodeFrameHead(FrameType.Job, {...job, ack: true}, image.length))
        socket.write(image)
        socket.uncork()
      }
      const onData = (chunk: Buffer): void => {
        try {
          decoder.push(chunk)
        } catch (error) {
          fail(new ImgscaleError('internal', 'Server B sent a reply that could not be read.', {cause: error}))
        }
      }
      const onError = (error: Error): void =>
        fail(acked ? new ImgscaleError('worker_failed', 'The connection to the worker failed before it replied.', {cause: error}) : notTaken('(its connection failed)', error))
      const onClose = (): void => fail(acked ? new ImgscaleError('worker_failed', 'The worker closed the connection before replying.') : notTaken('(its connection closed)'))
      socket.on('data', onData).on('error', onError).on('close', onClose)
      if (signal?.aborted) return abort()
      if (reused) write()
      else socket.once('connect', write)
    })
  }

  /** Closes the kept connections (shutdown). */
  close(): void {
    this.connections.close()
  }
}
