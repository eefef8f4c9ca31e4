/**
 * The framing of the socket between server A and the server B workers; see
 * docs/protocol.md. A frame is a fixed 12-byte prefix, a JSON header and a
 * binary body:
 *
 *   offset  size  field
 *   0       2     magic "IS"
 *   2       1     version (1)
 *   3       1     type (FrameType)
 *   4       4     header length H, big-endian
 *   8       4     body length B, big-endian
 *   12      H     header, a UTF-8 JSON object
 *   12+H    B     body, raw image bytes
 *
 * Lengths are checked against the receiver's limits as soon as the prefix
 * arrives, so an oversized frame is refused before its bytes are buffered.
 */

export const MAGIC = 0x4953 // "IS"
export const VERSION = 1
export const PREFIX_BYTES = 12

export enum FrameType {
  /** A -> B: resize the body as the header says. */
  Job = 1,
  /** B -> A: the body is the resized image. */
  Result = 2,
  /** B -> A: the job failed, or the frame was refused; the body is empty. */
  Error = 3,
  /** B -> A: the worker has read the job and is running it (only when the job asked, with `ack`); the body is empty. */
  Ack = 4,
}

export interface Frame {
  type: FrameType
  header: Record<string, unknown>
  body: Buffer
}

export interface FrameLimits {
  maxHeaderBytes: number
  maxBodyBytes: number
}

export type FrameErrorReason = 'bad_magic' | 'bad_version' | 'bad_type' | 'header_too_large' | 'body_too_large' | 'bad_header'

/** A frame that breaks the layout or the limits. The connection cannot be trusted after it. */
export class FrameError extends Error {
  override readonly name = 'FrameError'
  constructor(readonly reason: FrameErrorReason, message: string) {
    super(message)
  }
}

/** The prefix and header of a frame; the body is sent after it, possibly streamed. */
export function encodeFrameHead(type: FrameType, header: object, bodyLength: number): Buffer {
  const json = Buffer.from(JSON.stringify(header), 'utf8')
  const head = Buffer.allocUnsafe(PREFIX_BYTES + json.length)
  head.writeUInt16BE(MAGIC, 0)
  head.writeUInt8(VERSION, 2)
  head.writeUInt8(type, 3)
  head.writeUInt32BE(json.length, 4)
  head.writeUInt32BE(bodyLength, 8)
  json.copy(head, PREFIX_BYTES)
  return head
}

/** A whole frame as the buffers to write, without copying the body. */
export function encodeFrame(type: FrameType, header: object, body: Buffer = Buffer.alloc(0)): Buffer[] {
  return [encodeFrameHead(type, header, body.length), body]
}

/**
 * Turns a byte stream into frames, whatever the TCP chunking: a frame split
 * over many chunks and many frames in one chunk both work. `push` throws a
 * FrameError on the first broken frame; after that the decoder is spent.
 */
export class FrameDecoder {
  private pending: Buffer[] = []
  private pendingBytes = 0
  private current?: {type: FrameType; headerLength: number; bodyLength: number}
  private failed = false

  constructor(
    private readonly limits: FrameLimits,
    private readonly onFrame: (frame: Frame) => void,
  ) {}

  /** True while part of a frame has arrived and the rest has not. */
  get midFrame(): boolean {
    return this.pendingBytes > 0 || this.current !== undefined
  }

  push(chunk: Buffer): void {
    if (this.failed) throw new FrameError('bad_header', 'The decoder already refused a frame.')
    this.pending.push(chunk)
    this.pendingBytes += chunk.length
    try {
      while (this.next());
    } catch (error) {
      this.failed = true
      this.pending = []
      this.pendingBytes = 0
      throw error
    }
  }

  /** Emits one frame if enough bytes are here; returns whether it did. */
  private next(): boolean {
    if (!this.current) {
      if (this.pendingBytes < PREFIX_BYTES) return false
      this.current = this.readPrefix(this.take(PREFIX_BYTES))
    }
    const {type, headerLength, bodyLength} = this.current
    if (this.pendingBytes < headerLength + bodyLength) return false
    const header = parseHeader(this.take(headerLength))
    const body = this.take(bodyLength)
    this.current = undefined
    this.onFrame({type, header, body})
    return true
  }

  private readPrefix(prefix: Buffer): {type: FrameType; headerLength: number; bodyLength: number} {
    if (prefix.readUInt16BE(0) !== MAGIC) throw new FrameError('bad_magic', 'Not an imgscale frame (bad magic bytes).')
    const version = prefix.readUInt8(2)
    if (version !== VERSION) throw new FrameError('bad_version', `Frame version ${version} is not supported (expected ${VERSION}).`)
    const type = prefix.readUInt8(3)
    if (!(type in FrameType)) throw new FrameError('bad_type', `Frame type ${type} is unknown.`)
    const headerLength = prefix.readUInt32BE(4)
    const bodyLength = prefix.readUInt32BE(8)
    if (headerLength > this.limits.maxHeaderBytes) {
      throw new FrameError('header_too_large', `Frame header of ${headerLength} bytes is over the ${this.limits.maxHeaderBytes}-byte limit.`)
    }
    if (bodyLength > this.limits.maxBodyBytes) {
      throw new FrameError('body_too_large', `Frame body of ${bodyLength} bytes is over the ${this.limits.maxBodyBytes}-byte limit.`)
    }
    return {type, headerLength, bodyLength}
  }

  /** Removes n bytes from the front, copying only when they span chunks. */
  private take(n: number): Buffer {
    this.pendingBytes -= n
    const first = this.pending[0]
    if (first && first.length >= n) {
      if (first.length === n) this.pending.shift()
      else this.pending[0] = first.subarray(n)
      return first.subarray(0, n)
    }
    const out = Buffer.allocUnsafe(n)
    let filled = 0
    while (filled < n) {
      const chunk = this.pending[0]!
      const used = Math.min(chunk.length, n - filled)
      chunk.copy(out, filled, 0, used)
      filled += used
      if (used === chunk.length) this.pending.shift()
      else this.pending[0] = chunk.subarray(used)
    }
    return out
  }
}

function parseHeader(bytes: Buffer): Record<string, unknown> {
  let value: unknown
  try {
    value = JSON.parse(bytes.toString('utf8'))
  } catch {
    throw new FrameError('bad_header', 'Frame header is not valid JSON.')
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new FrameError('bad_header', 'Frame header must be a JSON object.')
  }
  return value as Record<string, unknown>
}
