/**
 * Server A's side of the socket: sends one job to server B and waits for the
 * reply on the same connection. One connection per job, so the cluster's
 * round-robin (which hands out connections, not frames) spreads the work.
 * The job carries the token, so the worker reads the upload and saves the
 * result itself: only headers cross the socket.
 */
import net from 'node:net'

import {FIXED} from '../config.js'
import {ImgscaleError, type TaskErrorCode} from '../errors.js'
import {encodeFrameHead, FrameDecoder, FrameType} from '../protocol/frame.js'
import {parseReply, type JobHeader, type ResultHeader} from '../protocol/messages.js'
import type {BackendAddress} from './pool.js'


/** What a worker may fail a task with (the image, or no room to save the result); anything else is ours. */
const TASK_ERRORS = new Set<string>(['corrupt_image', 'image_too_large', 'unsupported_media_type', 'timeout', 'insufficient_storage'] satisfies TaskErrorCode[])

export class BackendClient {
  constructor(private readonly address: BackendAddress) {}

  /** Sends the job to a worker and resolves with its result. Rejects with an ImgscaleError. */
  run(job: JobHeader, timeoutMs: number): Promise<ResultHeader> {
    return new Promise((resolve, reject) => {
      let settled = false
      const socket = net.connect({host: this.address.host, port: this.address.port, noDelay: true})

      const settle = (error: ImgscaleError | null, result?: ResultHeader): void => {
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

      // The worker saved the result: a reply with a body is not one A asked for.
      const decoder = new FrameDecoder({maxHeaderBytes: FIXED.maxFrameHeaderBytes, maxBodyBytes: 0}, (frame) => {
        const reply = parseReply(frame)
        if (reply.type === FrameType.Result) {
          settle(null, reply.header)
        } else if (TASK_ERRORS.has(reply.header.code)) {
          settle(new ImgscaleError(reply.header.code, reply.header.message))
        } else {
          settle(new ImgscaleError('internal', `Server B could not process the task: ${reply.header.message}`))
        }
      })

      socket.on('connect', () => socket.write(encodeFrameHead(FrameType.Job, job, 0)))
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
