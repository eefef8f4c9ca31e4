/**
 * Server A's side of the socket: sends one job to server B and waits for the
 * reply on the same connection. One connection per job, so the cluster's
 * round-robin (which hands out connections, not frames) spreads the work.
 *
 * Two kinds of job: `run` carries the token, so the worker reads the upload
 * and saves the result in the data directory itself and only headers cross
 * the socket (serve without Redis); `send` carries the image and gets the
 * result back in the reply (a worker host, which has no shared directory).
 */
import net from 'node:net'

import {FIXED} from '../config.js'
import {ImgscaleError, type TaskErrorCode} from '../errors.js'
import {encodeFrameHead, FrameDecoder, FrameType} from '../protocol/frame.js'
import {parseReply, type JobHeader, type ResultHeader} from '../protocol/messages.js'
import type {BackendAddress} from './pool.js'

/** What a worker may fail a task with (the image, or no room to save the result); anything else is ours. */
const TASK_ERRORS = new Set<string>(['corrupt_image', 'image_too_large', 'unsupported_media_type', 'timeout', 'insufficient_storage'] satisfies TaskErrorCode[])

export interface Result {
  header: ResultHeader
  /** The encoded image; empty when the worker saved it itself. */
  body: Buffer
}

export class BackendClient {
  constructor(private readonly address: BackendAddress) {}

  /** A job with the token: the worker saves the result. Resolves with its header; rejects with an ImgscaleError. */
  async run(job: JobHeader, timeoutMs: number): Promise<ResultHeader> {
    return (await this.exchange(job, undefined, 0, timeoutMs)).header
  }

  /** A job with its image: the result (at most `maxResultBytes`) comes back in the reply. */
  send(job: JobHeader, image: Buffer, timeoutMs: number, maxResultBytes: number): Promise<Result> {
    return this.exchange(job, image, maxResultBytes, timeoutMs)
  }

  private exchange(job: JobHeader, image: Buffer | undefined, maxBodyBytes: number, timeoutMs: number): Promise<Result> {
    return new Promise((resolve, reject) => {
      let settled = false
      const socket = net.connect({host: this.address.host, port: this.address.port, noDelay: true})

      const settle = (error: ImgscaleError | null, result?: Result): void => {
        if (settled) return
        settled = true
        clearTimeout(deadline)
        socket.destroy()
        if (error) reject(error)
        else resolve(result!)
      }

      const deadline = setTimeout(
        () => settle(new ImgscaleError('timeout', `Processing took longer than the ${timeoutMs / 1000} s limit.`)),
        timeoutMs,
      )

      const decoder = new FrameDecoder({maxHeaderBytes: FIXED.maxFrameHeaderBytes, maxBodyBytes}, (frame) => {
        const reply = parseReply(frame)
        if (reply.type === FrameType.Result) {
          settle(null, {header: reply.header, body: reply.body})
        } else if (TASK_ERRORS.has(reply.header.code)) {
          settle(new ImgscaleError(reply.header.code, reply.header.message))
        } else {
          settle(new ImgscaleError('internal', `Server B could not process the task: ${reply.header.message}`))
        }
      })

      socket.on('connect', () => {
        // Head and image as separate writes: the image is not copied.
        socket.cork()
        socket.write(encodeFrameHead(FrameType.Job, job, image?.length ?? 0))
        if (image) socket.write(image)
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
