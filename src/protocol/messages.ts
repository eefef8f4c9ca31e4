/**
 * The typed headers carried by each frame type, and their validation. Both
 * sides validate what they receive: server B's port can be reached by anything
 * on its host, not only by server A.
 */
import {isErrorCode, type ErrorCode} from '../errors.js'
import {FORMATS, type ImageFormat} from '../image/formats.js'
import {POSITIONS} from '../image/options.js'
import type {PlanFit, ResizePlan} from '../image/plan.js'
import {FrameError, FrameType, type Frame} from './frame.js'

/** A -> B: the job id and the plan server A made; the image is the frame's body. */
export interface JobHeader extends ResizePlan {
  id: string
  /**
   * Asks the worker for an Ack frame the moment it has read the job, before
   * it runs it: a job never acknowledged never ran, so it can be sent again
   * elsewhere without counting as an attempt (issue 20).
   */
  ack?: boolean
}

/** B -> A: what the worker produced. */
export interface ResultHeader {
  id: string
  format: ImageFormat
  width: number
  height: number
  /** Size of the encoded result: the body's length. */
  bytes: number
  /** Process id of the worker that made it (for the logs: which worker serves). */
  worker?: number
}

/** B -> A: why there is no result. `id` is null when the frame itself was refused. */
export interface ErrorHeader {
  id: string | null
  code: ErrorCode
  message: string
}

export type Reply = {type: FrameType.Result; header: ResultHeader; body: Buffer} | {type: FrameType.Error; header: ErrorHeader}

export function parseJob(frame: Frame): JobHeader {
  if (frame.type !== FrameType.Job) throw new FrameError('bad_type', `Expected a job frame, got type ${frame.type}.`)
  const h = frame.header
  return {
    id: stringField(h, 'id'),
    format: formatField(h, 'format'),
    width: sizeField(h, 'width'),
    height: sizeField(h, 'height'),
    frames: sizeField(h, 'frames'),
    // The resize options: absent means a plain scale, as sent before they existed.
    fit: oneOf(h, 'fit', PLAN_FITS, 'fill'),
    position: oneOf(h, 'position', POSITIONS, 'centre'),
    quality: h.quality === undefined || h.quality === null ? null : qualityField(h),
    keepMetadata: h.keepMetadata === true,
    ...(h.ack === true ? {ack: true} : {}),
  }
}

export function parseReply(frame: Frame): Reply {
  const h = frame.header
  if (frame.type === FrameType.Result) {
    const header = {
      id: stringField(h, 'id'),
      format: formatField(h, 'format'),
      width: sizeField(h, 'width'),
      height: sizeField(h, 'height'),
      bytes: sizeField(h, 'bytes'),
      ...(Number.isSafeInteger(h.worker) ? {worker: h.worker as number} : {}),
    }
    if (header.bytes !== frame.body.length) throw new FrameError('bad_header', 'Result size and body length differ.')
    return {type: FrameType.Result, header, body: frame.body}
  }
  if (frame.type === FrameType.Error) {
    const code = isErrorCode(h.code) ? h.code : 'internal'
    const message = typeof h.message === 'string' ? h.message : 'The worker failed without saying why.'
    return {type: FrameType.Error, header: {id: typeof h.id === 'string' ? h.id : null, code, message}}
  }
  throw new FrameError('bad_type', `Expected a result or error frame, got type ${frame.type}.`)
}

function stringField(h: Record<string, unknown>, name: string): string {
  const value = h[name]
  if (typeof value !== 'string' || value.length === 0 || value.length > 64) {
    throw new FrameError('bad_header', `Header field "${name}" must be a short non-empty string.`)
  }
  return value
}

function sizeField(h: Record<string, unknown>, name: string): number {
  const value = h[name]
  if (!Number.isSafeInteger(value) || (value as number) < 1) {
    throw new FrameError('bad_header', `Header field "${name}" must be a positive integer.`)
  }
  return value as number
}

const PLAN_FITS: readonly PlanFit[] = ['fill', 'cover', 'contain']

function oneOf<T extends string>(h: Record<string, unknown>, name: string, values: readonly T[], absent: T): T {
  const value = h[name]
  if (value === undefined) return absent
  if (!(values as readonly unknown[]).includes(value)) throw new FrameError('bad_header', `Header field "${name}" must be one of ${values.join(', ')}.`)
  return value as T
}

function qualityField(h: Record<string, unknown>): number {
  const value = h.quality
  if (!Number.isSafeInteger(value) || (value as number) < 1 || (value as number) > 100) {
    throw new FrameError('bad_header', 'Header field "quality" must be an integer from 1 to 100.')
  }
  return value as number
}

function formatField(h: Record<string, unknown>, name: string): ImageFormat {
  const value = h[name]
  if (!(FORMATS as readonly unknown[]).includes(value)) {
    throw new FrameError('bad_header', `Header field "${name}" must be one of ${FORMATS.join(', ')}.`)
  }
  return value as ImageFormat
}
