/**
 * The typed headers carried by each frame type, and their validation. Both
 * sides validate what they receive: server B's port can be reached by anything
 * on its host, not only by server A.
 */
import {isErrorCode, type ErrorCode} from '../errors.js'
import {FORMATS, type ImageFormat} from '../image/formats.js'
import {BLUR_SIGMA, MAX_OUTPUTS, POSITIONS, ROTATIONS, SHARPEN_SIGMA, type Crop} from '../image/options.js'
import type {PlanFit, ResizePlan} from '../image/plan.js'
import type {Rgba} from '../image/colour.js'
import {FrameError, FrameType, type Frame} from './frame.js'

/**
 * A -> B: the job id and the plans server A made, one per output (contract
 * section 10: up to 16 from one upload); the image is the frame's body.
 */
export interface JobHeader {
  id: string
  outputs: ResizePlan[]
  /**
   * Asks the worker for an Ack frame the moment it has read the job, before
   * it runs it: a job never acknowledged never ran, so it can be sent again
   * elsewhere without counting as an attempt (issue 20).
   */
  ack?: boolean
}

/** One image of a result: the body holds them one after another, in the job's order. */
export interface ResultImage {
  format: ImageFormat
  width: number
  height: number
  /** Its encoded size, so the body can be cut into the images. */
  bytes: number
}

/** B -> A: what the worker produced. */
export interface ResultHeader {
  id: string
  outputs: ResultImage[]
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
    outputs: listField(h, 'outputs').map(parsePlan),
    ...(h.ack === true ? {ack: true} : {}),
  }
}

function parsePlan(h: Record<string, unknown>): ResizePlan {
  return {
    format: formatField(h, 'format'),
    width: sizeField(h, 'width'),
    height: sizeField(h, 'height'),
    frames: sizeField(h, 'frames'),
    // Absent options are a plain scale.
    fit: oneOf(h, 'fit', PLAN_FITS, 'fill'),
    position: oneOf(h, 'position', POSITIONS, 'centre'),
    quality: nullable(h, 'quality', () => integerField(h, 'quality', 1, 100)),
    keepMetadata: h.keepMetadata === true,
    crop: nullable(h, 'crop', () => cropField(h.crop)),
    rotate: oneOf(h, 'rotate', ROTATIONS, 0),
    flip: h.flip === true,
    flop: h.flop === true,
    grayscale: h.grayscale === true,
    blur: nullable(h, 'blur', () => numberField(h, 'blur', BLUR_SIGMA.min, BLUR_SIGMA.max)),
    sharpen: nullable(h, 'sharpen', () => numberField(h, 'sharpen', SHARPEN_SIGMA.min, SHARPEN_SIGMA.max)),
    background: nullable(h, 'background', () => colourField(h.background)),
  }
}

export function parseReply(frame: Frame): Reply {
  const h = frame.header
  if (frame.type === FrameType.Result) {
    const outputs = listField(h, 'outputs').map((image) => ({
      format: formatField(image, 'format'),
      width: sizeField(image, 'width'),
      height: sizeField(image, 'height'),
      bytes: sizeField(image, 'bytes'),
    }))
    const header = {id: stringField(h, 'id'), outputs, ...(Number.isSafeInteger(h.worker) ? {worker: h.worker as number} : {})}
    if (outputs.reduce((sum, image) => sum + image.bytes, 0) !== frame.body.length) throw new FrameError('bad_header', 'Result sizes and body length differ.')
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

function oneOf<T extends string | number>(h: Record<string, unknown>, name: string, values: readonly T[], absent: T): T {
  const value = h[name]
  if (value === undefined) return absent
  if (!(values as readonly unknown[]).includes(value)) throw new FrameError('bad_header', `Header field "${name}" must be one of ${values.join(', ')}.`)
  return value as T
}

/** 1 to MAX_OUTPUTS objects. */
function listField(h: Record<string, unknown>, name: string): Array<Record<string, unknown>> {
  const value = h[name]
  const objects = Array.isArray(value) && value.every((item) => typeof item === 'object' && item !== null && !Array.isArray(item))
  if (!objects || value.length < 1 || value.length > MAX_OUTPUTS) {
    throw new FrameError('bad_header', `Header field "${name}" must be a list of 1 to ${MAX_OUTPUTS} objects.`)
  }
  return value as Array<Record<string, unknown>>
}

function nullable<T>(h: Record<string, unknown>, name: string, read: () => T): T | null {
  return h[name] === undefined || h[name] === null ? null : read()
}

function integerField(h: Record<string, unknown>, name: string, min: number, max: number): number {
  const value = h[name]
  if (!Number.isSafeInteger(value) || (value as number) < min || (value as number) > max) {
    throw new FrameError('bad_header', `Header field "${name}" must be an integer from ${min} to ${max}.`)
  }
  return value as number
}

function numberField(h: Record<string, unknown>, name: string, min: number, max: number): number {
  const value = h[name]
  if (typeof value !== 'number' || !(value >= min && value <= max)) throw new FrameError('bad_header', `Header field "${name}" must be a number from ${min} to ${max}.`)
  return value
}

function cropField(value: unknown): Crop {
  const crop = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>
  const corner = (name: string): number => integerField(crop, name, 0, Number.MAX_SAFE_INTEGER)
  return {x: corner('x'), y: corner('y'), width: sizeField(crop, 'width'), height: sizeField(crop, 'height')}
}

function colourField(value: unknown): Rgba {
  const colour = (typeof value === 'object' && value !== null ? value : {}) as Record<string, unknown>
  const channel = (name: string): number => integerField(colour, name, 0, 255)
  return {r: channel('r'), g: channel('g'), b: channel('b'), alpha: numberField(colour, 'alpha', 0, 1)}
}

function formatField(h: Record<string, unknown>, name: string): ImageFormat {
  const value = h[name]
  if (!(FORMATS as readonly unknown[]).includes(value)) {
    throw new FrameError('bad_header', `Header field "${name}" must be one of ${FORMATS.join(', ')}.`)
  }
  return value as ImageFormat
}

/** A result's body cut into its images, in the job's order (no copies). */
export function splitImages(header: ResultHeader, body: Buffer): Buffer[] {
  let offset = 0
  return header.outputs.map((image) => body.subarray(offset, (offset += image.bytes)))
}
