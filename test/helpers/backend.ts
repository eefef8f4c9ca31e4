/** Talking straight to server B's port, as anything on the host could. */
import net from 'node:net'

import {DEFAULTS, FIXED} from '../../src/config.js'
import {FrameDecoder, type Frame} from '../../src/protocol/frame.js'

export interface BackendExchange {
  /** Frames the worker sent back. */
  frames: Frame[]
  /** Whether the worker closed the connection. */
  closed: boolean
}

/**
 * Sends bytes to the backend, then collects replies until `expect` frames
 * came, the worker closed the connection, or `quietMs` passed with nothing
 * more (bounded by 10 s).
 */
export function exchange(
  backend: {host: string; port: number},
  chunks: Buffer[],
  options: {expect?: number; endAfterSend?: boolean; quietMs?: number} = {},
): Promise<BackendExchange> {
  return new Promise((resolve, reject) => {
    const frames: Frame[] = []
    const decoder = new FrameDecoder({maxHeaderBytes: FIXED.maxFrameHeaderBytes, maxBodyBytes: DEFAULTS.maxResultBytes}, (frame) => frames.push(frame))
    const socket = net.connect(backend)
    let quiet: NodeJS.Timeout | undefined
    const done = (closed: boolean): void => {
      clearTimeout(quiet)
      clearTimeout(cap)
      socket.destroy()
      resolve({frames, closed})
    }
    const cap = setTimeout(() => done(false), 10_000)
    const rearm = (): void => {
      clearTimeout(quiet)
      quiet = setTimeout(() => done(false), options.quietMs ?? 1500)
    }
    socket.on('connect', () => {
      for (const chunk of chunks) socket.write(chunk)
      if (options.endAfterSend) socket.end()
      rearm()
    })
    socket.on('data', (chunk) => {
      decoder.push(chunk)
      if (options.expect !== undefined && frames.length >= options.expect) done(false)
      else rearm()
    })
    socket.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' ? done(true) : reject(error)))
    socket.on('close', () => done(true))
  })
}
