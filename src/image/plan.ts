import {ImgscaleError} from '../errors.js'
import {ANIMATED_OUTPUT, MAX_SIDE, type ImageFormat} from './formats.js'
import type {ImageInfo} from './probe.js'

export interface PixelLimits {
  maxInputPixels: number
  maxOutputPixels: number
  maxFrames: number
}

/** Exactly what a worker is asked to produce. */
export interface ResizePlan {
  format: ImageFormat
  /** Size of one output frame. */
  width: number
  height: number
  /** Frames to decode and write: all of an animation kept as one, else 1. */
  frames: number
}

/** Contract: `max(1, round(w*s)) x max(1, round(h*s))`. */
export function scaledSize(width: number, height: number, scale: number): {width: number; height: number} {
  return {width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale))}
}

/**
 * Decides the output of a task from the input's header and refuses, before
 * any decoding, everything that would go over a limit.
 */
export function planResize(
  input: ImageInfo,
  scale: number,
  requested: ImageFormat | undefined,
  limits: PixelLimits,
): ResizePlan {
  if (input.frames > limits.maxFrames) {
    throw new ImgscaleError(
      'image_too_large',
      `The image has ${input.frames} frames; the limit is ${limits.maxFrames}.`,
    )
  }
  const inputPixels = input.width * input.height * input.frames
  if (inputPixels > limits.maxInputPixels) {
    throw new ImgscaleError(
      'image_too_large',
      `The image has ${megapixels(inputPixels)} MP${input.frames > 1 ? ` over ${input.frames} frames` : ''}; ` +
        `the input limit is ${megapixels(limits.maxInputPixels)} MP.`,
    )
  }

  const format = requested ?? input.format
  const frames = ANIMATED_OUTPUT.has(format) ? input.frames : 1
  const plan = {format, frames, ...scaledSize(input.width, input.height, scale)}
  checkOutputSize(plan, limits)
  return plan
}

/** Output checks, shared by server A (before the 202) and the worker (on every frame it is sent). */
export function checkOutputSize(plan: ResizePlan, limits: Pick<PixelLimits, 'maxOutputPixels'>): void {
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
    throw new ImgscaleError(
      'image_too_large',
      `The output would be ${width}x${height}, but ${format} images can be at most ${side} pixels on a side.`,
    )
  }
}

function megapixels(pixels: number): string {
  return String(Math.round(pixels / 1e5) / 10)
}
