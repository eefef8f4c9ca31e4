/**
 * Server A's side of the socket: sends one job to server B and waits for the
 * reply on the same connection. One connection per job, so the cluster's
 * round-robin (which hands out connections, not frames) spreads the work.
 */
import {createReadStream} from 'node:fs'
import net from 'node:net'

import {FIXED} from '../config.js'
import {ImgscaleError} from '../errors.js'
import {encodeFrameHead, FrameDecoder, FrameType} from '../protocol/frame.js'
import {parseReply, type JobHeader, type ResultHeader} from '../protocol/messages.js'
import type {BackendAddress} from './pool.js'

export interface JobInput {
  path: string
  bytes: number
}

export interface JobResult {
  header: ResultHeader
  body: Buffer
}

/** Errors a worker may report about the user's image; anything else is ours. */
const IMAGE_ERRORS = new Set(['corrupt_image', 'image_too_large', 'unsupported_media_type', 'timeout'])

export class BackendClient {
  constructor(
    private readonly address: BackendAddress,
    private readonly maxResultBytes: number,
  ) {}

  /** Streams the input file to a worker and resolves with its result. Rejects with an ImgscaleError. */
  run(job: JobHeader, input: JobInput, timeoutMs: number): Promise<JobResult> {
    return new Promise((resolve, reject) => {
      let settled = false
      const socket = net.connect({host: this.address.host, port: this.address.port, noDelay: true})

      const settle = (error: ImgscaleError | null, result?: JobResult): void => {
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

      const decoder = new FrameDecoder({maxHeaderBytes: FIXED.maxFrameHeaderBytes, maxBodyBytes: this.maxResultBytes}, (frame) => {
        const reply = parseReply(frame)
        if (reply.type === FrameType.Result) {
          settle(null, {header: reply.header, body: reply.body})
        } else if (IMAGE_ERRORS.has(reply.header.code)) {
          settle(new ImgscaleError(reply.header.code, reply.header.message))
        } else {
          settle(new ImgscaleError('internal', `Server B could not process the task: ${reply.header.message}`))
        }
      })

      socket.on('connect', () => {
        socket.write(encodeFrameHead(FrameType.Job, job, input.bytes))
        // Large reads: a 1 MiB chunk is one read and one socket write instead of sixteen.
        const file = createReadStream(input.path, {highWaterMark: FIXED.backendReadChunkBytes})
        file.on('error', (error) => settle(new ImgscaleError('internal', 'The uploaded file could not be read back.', {cause: error})))
        file.pipe(socket, {end: false})
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
