/**
 * Server B, worker side: accepts connections on the shared port, reads job
 * frames, makes every output the image each one carries asks for, and replies with the result on
 * the same socket. It opens no file: everything a task keeps is server A's.
 * A connection carries jobs one after another; a broken frame gets an error
 * reply and the connection is closed, and nothing a peer sends can take the
 * process down.
 */
import net from 'node:net'

import {FIXED, type WorkerConfig} from '../config.js'
import {ImgscaleError} from '../errors.js'
import {checkOutputSize} from '../image/plan.js'
import {encodeFrame, encodeFrameHead, FrameDecoder, FrameError, FrameType, type Frame} from '../protocol/frame.js'
import {parseJob} from '../protocol/messages.js'
import {resizeImages} from './pipeline.js'

/** Told when a job starts and ends, whatever its outcome. */
export type JobWatcher = (event: 'job-start' | 'job-end', id: string) => void

export function createWorkerServer(config: WorkerConfig, watch: JobWatcher): net.Server {
  const server = net.createServer({noDelay: true}, (socket) => serveConnection(socket, config, watch))
  server.maxConnections = FIXED.backendMaxConnections
  return server
}

function serveConnection(socket: net.Socket, config: WorkerConfig, watch: JobWatcher): void {
  // Peers that vanish mid-frame are routine; their errors end only their socket.
  socket.on('error', () => socket.destroy())
  socket.setTimeout(config.idleMs, () => socket.destroy())

  const jobs: Frame[] = []
  let working = false
  // The idle timer resets on every byte, so a peer trickling a frame one
  // byte at a time would never trip it: a frame, once begun, must be whole
  // within the same time.
  let frameDeadline: NodeJS.Timeout | undefined
  const watchFrame = (): void => {
    if (decoder.midFrame) frameDeadline ??= setTimeout(() => socket.destroy(), config.idleMs)
  }
  socket.on('close', () => clearTimeout(frameDeadline))

  const decoder = new FrameDecoder({maxHeaderBytes: FIXED.maxFrameHeaderBytes, maxBodyBytes: config.maxBodyBytes}, (frame) => {
    clearTimeout(frameDeadline)
    frameDeadline = undefined
    jobs.push(frame)
    // One job at a time per connection: stop reading until it is answered,
    // so a peer cannot pile up frames in this worker's memory.
    socket.pause()
    void drain()
  })

  socket.on('data', (chunk: Buffer) => {
    try {
      decoder.push(chunk)
    } catch (error) {
      refuse(socket, error)
      return
    }
    if (!working) watchFrame()
  })

  async function drain(): Promise<void> {
    if (working) return
    working = true
    // The idle timer must not fire while the worker, not the peer, is busy.
    socket.setTimeout(0)
    while (jobs.length > 0 && !socket.destroyed) {
      const reply = await answer(jobs.shift()!)
      if (reply === 'refuse') return
      // Head and image as separate writes (no copy of the image), sent as one batch.
      socket.cork()
      for (const part of reply) socket.write(part)
      socket.uncork()
    }
    working = false
    if (!socket.destroyed) {
      socket.setTimeout(config.idleMs)
      watchFrame()
      socket.resume()
    }
  }

  async function answer(frame: Frame): Promise<Buffer[] | 'refuse'> {
    let job
    try {
      job = parseJob(frame)
    } catch (error) {
      refuse(socket, error)
      return 'refuse'
    }
    watch('job-start', job.id)
    if (job.ack) socket.write(Buffer.concat(encodeFrame(FrameType.Ack, {id: job.id})))
    try {
      for (const plan of job.outputs) checkOutputSize(plan, config)
      const outputs = await resizeImages(frame.body, job.outputs, {maxInputPixels: config.maxInputPixels, timeoutMs: config.taskTimeoutMs, concurrency: config.outputConcurrency})
      const bytes = outputs.reduce((sum, output) => sum + output.data.length, 0)
      if (bytes > config.maxResultBytes) {
        throw new ImgscaleError('image_too_large', `The result would be ${mib(bytes)} MiB; the limit is ${mib(config.maxResultBytes)} MiB.`)
      }
      const header = {id: job.id, outputs: outputs.map(({format, width, height, data}) => ({format, width, height, bytes: data.length})), worker: process.pid}
      // The images follow the head one after another, each its own write: none is copied.
      return [encodeFrameHead(FrameType.Result, header, bytes), ...outputs.map((output) => output.data)]
    } catch (error) {
      const failure = error instanceof ImgscaleError ? error : new ImgscaleError('internal', 'The worker failed unexpectedly.')
      return encodeFrame(FrameType.Error, {id: job.id, code: failure.code, message: failure.message})
    } finally {
      watch('job-end', job.id)
    }
  }
}

const mib = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1)

/** Answers a broken frame with an error frame, then closes: the stream can no longer be trusted. */
function refuse(socket: net.Socket, error: unknown): void {
  const message = error instanceof FrameError ? error.message : 'The frame could not be read.'
  socket.end(Buffer.concat(encodeFrame(FrameType.Error, {id: null, code: 'invalid_request', message})))
  // A peer that keeps the connection open after the refusal is not waited for.
  setTimeout(() => socket.destroy(), 1000).unref()
}
