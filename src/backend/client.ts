/**
 * Server A's side of the socket (and a worker host's): sends one job, the
 * image in its body, to server B and waits for the result on the same
 * connection. One connection per job, so the cluster's round-robin (which
 * hands out connections, not frames) spreads the work.
 */
import net from 'node:net'

import {FIXED} from '../config.js'
import {ImgscaleError, type TaskErrorCode} from '../errors.js'
import {encodeFrameHead, FrameDecoder, FrameType, type Frame} from '../protocol/frame.js'
import {parseReply, type JobHeader, type ResultHeader} from '../protocol/messages.js'
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

export interface SendLimits {
  timeoutMs: number
  maxResultBytes: number
  /** Aborted: the connection is closed at once (the worker's result goes nowhere) and the call rejects with `cancelled`. */
  signal?: AbortSignal | undefined
}

export class BackendClient {
  constructor(private readonly address: BackendAddress) {}

  /** Resolves with the result; rejects with an ImgscaleError. */
  send(job: JobHeader, image: Buffer, {timeoutMs, maxResultBytes, signal}: SendLimits): Promise<Result> {
    return new Promise((resolve, reject) => {
      let settled = false
      const socket = net.connect({host: this.address.host, port: this.address.port, noDelay: true})

      const settle = (error: ImgscaleError | null, result?: Result): void => {
        if (settled) return
        settled = true
        clearTimeout(deadline)
        signal?.removeEventListener('abort', abort)
        socket.destroy()
        if (error) reject(error)
        else resolve(result!)
      }

      const deadline = setTimeout(
        () => settle(new ImgscaleError('timeout', `Processing took longer than the ${timeoutMs / 1000} s limit.`)),
        timeoutMs,
      )

      const abort = (): void => settle(new ImgscaleError('cancelled', 'The request was cancelled before its image was processed.'))
      signal?.addEventListener('abort', abort, {once: true})
      if (signal?.aborted) abort()

      const decoder = new FrameDecoder({maxHeaderBytes: FIXED.maxFrameHeaderBytes, maxBodyBytes: maxResultBytes}, (frame) => {
        let result: Result
        try {
          result = resultOf(frame)
        } catch (error) {
          // A reply that cannot be read falls through to the 'data' handler: `internal`.
          if (!(error instanceof ImgscaleError)) throw error
          return settle(error)
        }
        settle(null, result)
      })

      socket.on('connect', () => {
        // Head and image as separate writes: the image is not copied.
        socket.cork()
        socket.write(encodeFrameHead(FrameType.Job, job, image.length))
        socket.write(image)
        socket.uncork()
      })
      socket.on('data', (chunk: Buffer) => {
        try {
          decoder.push(chunk)
        } catch (error) {
          settle(new ImgscaleError('internal', 'Server B sent a reply that could not be read.', {cause: error}))
        }
      })
      socket.on('error', (error) =>
        settle(new ImgscaleError('worker_failed', 'The connection to the worker failed before it replied.', {cause: error})),
      )
      socket.on('close', () => settle(new ImgscaleError('worker_failed', 'The worker closed the connection before replying.')))
    })
  }
}
