/**
 * The one place where a task's output is decided: from the input's header
 * and the user's options, the exact format, size and frames a worker makes.
 * Server A plans before it answers 202, so everything a limit refuses is
 * refused up front; the worker follows the plan and checks it again.
 */
import {ImgscaleError} from '../errors.js'
import {parseHexColour, type Rgba} from './colour.js'
import {ANIMATED_OUTPUT, MAX_SIDE, MIME_TYPE, type ImageFormat} from './formats.js'
import {NO_OPERATIONS, QUALITY_FORMATS, type Position, type ResizeOptions} from './options.js'
import type {ImageInfo} from './probe.js'

export interface PixelLimits {
  maxInputPixels: number
  maxOutputPixels: number
  maxFrames: number
}

/** How the worker reaches exactly `width x height` from the oriented input. */
export type PlanFit = 'fill' | 'cover' | 'contain'

/** Everything but format and size of a plain scale-factor plan (and what a plan recorded before options existed lacks). */
export const PLAIN_RESIZE = {fit: 'fill', position: 'centre', quality: null, keepMetadata: false, ...NO_OPERATIONS} as const satisfies Partial<ResizePlan>

/** Exactly what a worker is asked to produce; the operations as the user gave them, but the background as sharp takes it. */
export interface ResizePlan extends Pick<ResizeOptions, 'crop' | 'rotate' | 'flip' | 'flop' | 'grayscale' | 'blur' | 'sharpen'> {
  format: ImageFormat
  /** Size of one output frame. */
  width: number
  height: number
  /** Frames to decode and write: all of an animation kept as one, else 1. */
  frames: number
  fit: PlanFit
  /** What `cover` keeps, where `contain` puts the image. */
  position: Position
  /** Encoder quality; null for the encoder's setting in pipeline.ts. */
  quality: number | null
  /** Keep EXIF, XMP and the ICC profile instead of stripping them and converting to sRGB. */
  keepMetadata: boolean
  /** Padding of `contain` and what alpha is flattened onto; null: black, transparent where the format has alpha. */
  background: Rgba | null
}

interface Size {
  width: number
  height: number
}

/** Contract: `max(1, round(w*s)) x max(1, round(h*s))`. */
export function scaledSize(width: number, height: number, scale: number): Size {
  return {width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale))}
}

/**
 * Contract section 5: the output size from the oriented input size and the
 * options. One side given: the other follows the aspect ratio. Both: `fill`,
 * `cover` and `contain` give the box; `inside` and `outside` scale by the
 * smaller or larger ratio.
 */
export function outputSize(input: Size, options: Pick<ResizeOptions, 'scaleFactor' | 'width' | 'height' | 'fit'>): Size {
  const {width: w, height: h} = input
  const {scaleFactor, width, height, fit} = options
  if (scaleFactor !== null) return scaledSize(w, h, scaleFactor)
  if (width !== null && height === null) return {width, height: Math.max(1, Math.round((h * width) / w))}
  if (height !== null && width === null) return {width: Math.max(1, Math.round((w * height) / h)), height}
  if (width === null || height === null) throw new Error('Resize options without a scale factor or a box.')
  if (fit === 'inside') return scaledSize(w, h, Math.min(width / w, height / h))
  if (fit === 'outside') return scaledSize(w, h, Math.max(width / w, height / h))
  return {width, height}
}

/**
 * Contract section 10: what the resize starts from, the oriented input
 * cropped and turned. A crop must lie inside the image: `invalid_option`.
 */
export function sourceSize(input: Size, options: Pick<ResizeOptions, 'crop' | 'rotate'>): Size {
  const {crop, rotate} = options
  if (crop && (crop.x + crop.width > input.width || crop.y + crop.height > input.height)) {
    throw new ImgscaleError(
      'invalid_option',
      `crop ${crop.x},${crop.y},${crop.width},${crop.height} is not inside the image, which is ${input.width}x${input.height} (after EXIF orientation).`,
    )
  }
  const region = crop ?? input
  return rotate === 90 || rotate === 270 ? {width: region.height, height: region.width} : {width: region.width, height: region.height}
}

/** The modern formats a request's Accept header names, best first: what `format=auto` may choose. */
export type AcceptedFormats = ReadonlyArray<'avif' | 'webp'>

/** The formats `format=auto` may choose from an Accept header: AVIF and WebP, if named. */
export function acceptedFormats(accept: string | undefined): AcceptedFormats {
  const named = acceptedTypes(accept ?? '')
  return (['avif', 'webp'] as const).filter((format) => named.has(MIME_TYPE[format]))
}

/**
 * `format=auto`: AVIF if the upload's Accept header named image/avif, else
 * WebP if it named image/webp, else the input's format. An animation never
 * becomes AVIF, which would keep only its first frame.
 */
export function negotiateFormat(accepted: AcceptedFormats, input: ImageInfo): ImageFormat {
  if (accepted.includes('avif') && input.frames === 1) return 'avif'
  if (accepted.includes('webp')) return 'webp'
  return input.format
}

/** The media types an Accept header names explicitly (no wildcards), minus those it refuses with q=0. */
function acceptedTypes(accept: string): Set<string> {
  const types = new Set<string>()
  for (const range of accept.slice(0, 4096).split(',')) {
    const [type, ...params] = range.split(';').map((part) => part.trim().toLowerCase())
    const q = params.find((param) => /^q\s*=/.test(param))
    if (type && !(q && Number(q.split('=')[1]) === 0)) types.add(type)
  }
  return types
}

/** The plans of every output of a task (contract section 10): the input is checked once, each output on its own. */
export function planOutputs(input: ImageInfo, outputs: readonly ResizeOptions[], limits: PixelLimits, accepted: AcceptedFormats = []): ResizePlan[] {
  checkInput(input, limits)
  return outputs.map((options) => planOutput(input, options, limits, accepted))
}

/**
 * Decides one output from the input's header and refuses, before any
 * decoding, everything that would go over a limit. `accepted`: what the
 * upload's Accept header named, for `format=auto`.
 */
export function planResize(input: ImageInfo, options: ResizeOptions, limits: PixelLimits, accepted: AcceptedFormats = []): ResizePlan {
  return planOutputs(input, [options], limits, accepted)[0]!
}

function checkInput(input: ImageInfo, limits: PixelLimits): void {
  if (input.frames > limits.maxFrames) {
    throw new ImgscaleError('image_too_large', `The image has ${input.frames} frames; the limit is ${limits.maxFrames}.`)
  }
  const inputPixels = input.width * input.height * input.frames
  if (inputPixels > limits.maxInputPixels) {
    throw new ImgscaleError(
      'image_too_large',
      `The image has ${megapixels(inputPixels)} MP${input.frames > 1 ? ` over ${input.frames} frames` : ''}; ` +
        `the input limit is ${megapixels(limits.maxInputPixels)} MP.`,
    )
  }
}

function planOutput(input: ImageInfo, options: ResizeOptions, limits: PixelLimits, accepted: AcceptedFormats): ResizePlan {
  const format = options.format === 'auto' ? negotiateFormat(accepted, input) : (options.format ?? input.format)
  if (options.quality !== null && !QUALITY_FORMATS.has(format)) {
    throw new ImgscaleError('invalid_option', `quality applies to JPEG, WebP, AVIF and TIFF output; this task's output is ${format}. Leave quality out, or choose another format.`)
  }
  const frames = ANIMATED_OUTPUT.has(format) ? input.frames : 1
  const boxed = options.scaleFactor === null && options.width !== null && options.height !== null
  const fit: PlanFit = boxed && (options.fit === 'cover' || options.fit === 'contain') ? options.fit : 'fill'
  const {crop, rotate, flip, flop, grayscale, blur, sharpen, background} = options
  const plan: ResizePlan = {
    format,
    frames,
    ...outputSize(sourceSize(input, options), options),
    fit,
    position: options.position,
    quality: options.quality,
    keepMetadata: options.metadata === 'keep',
    crop,
    rotate,
    flip,
    flop,
    grayscale,
    blur,
    sharpen,
    background: background === null ? null : (parseHexColour(background) ?? null),
  }
  checkOutputSize(plan, limits)
  return plan
}

/** Output checks, shared by server A (before the 202) and the worker (on every frame it is sent). */
export function checkOutputSize(plan: Pick<ResizePlan, 'width' | 'height' | 'frames' | 'format'>, limits: Pick<PixelLimits, 'maxOutputPixels'>): void {
  const {width, height, frames, format} = plan
  const outputPixels = width * height * frames
  if (outputPixels > limits.maxOutputPixels) {
    throw new ImgscaleError(
      'image_too_large',
      `The output would be ${width}x${height}${frames > 1 ? ` x ${frames} frames` : ''} ` +
        `(${megapixels(outputPixels)} MP); the output limit is ${megapixels(limits.maxOutputPixels)} MP.`,
    )
  }
  const side = MAX_SIDE[format]
  if (width > side || height > side) {
    throw new ImgscaleError('image_too_large', `The output would be ${width}x${height}, but ${format} images can be at most ${side} pixels on a side.`)
  }
}

function megapixels(pixels: number): string {
  return String(Math.round(pixels / 1e5) / 10)
}
