import sharp, {type ResizeOptions, type Sharp} from 'sharp'

import {ImgscaleError} from '../errors.js'
import type {ImageFormat} from '../image/formats.js'
import type {ResizePlan} from '../image/plan.js'

export interface PipelineLimits {
  maxInputPixels: number
  timeoutMs: number
}

export interface PipelineOutput {
  data: Buffer
  format: ImageFormat
  width: number
  /** Height of one frame. */
  height: number
}

/**
 * Encoder settings. sharp's defaults except where they cost seconds per photo
 * on a 2-core machine (field notes B5): AVIF effort 4 took 4.6 s and GIF
 * effort 7 over 2 s on one 3 MP image. The benchmark's limit encodes with
 * these too, so both sides make the same bytes. `quality` is the user's
 * (plan.ts lets it through only for the formats that take one).
 */
export const ENCODE: Record<ImageFormat, (image: Sharp, quality?: number) => Sharp> = {
  jpeg: (image, quality = 80) => image.jpeg({quality}),
  png: (image) => image.png(),
  webp: (image, quality = 80) => image.webp({quality}),
  avif: (image, quality = 50) => image.avif({quality, effort: 2}),
  gif: (image) => image.gif({effort: 3}),
  tiff: (image, quality = 80) => image.tiff({quality}),
}

/**
 * How the plan's exact size is reached. `contain` pads with transparency,
 * or white where the output has no alpha channel.
 */
function resizeOptions(plan: ResizePlan): ResizeOptions {
  if (plan.fit !== 'contain') return {fit: plan.fit, position: plan.position}
  const opaque = plan.format === 'jpeg'
  return {fit: 'contain', position: plan.position, background: {r: 255, g: 255, b: 255, alpha: opaque ? 1 : 0}}
}

/**
 * Decode, auto-orient, resize to exactly the plan's size, keep or strip the
 * metadata, encode.
 */
export async function resizeImage(input: Buffer, plan: ResizePlan, limits: PipelineLimits): Promise<PipelineOutput> {
  try {
    // sharp's constructor throws at once on some inputs (an empty buffer): inside the try too.
    let pipeline = sharp(input, {
      // Strictest decoding: a truncated or damaged upload fails instead of
      // coming out half grey (field notes D7).
      failOn: 'warning',
      limitInputPixels: limits.maxInputPixels,
      autoOrient: true,
      animated: plan.frames > 1,
    })
      .resize(plan.width, plan.height, resizeOptions(plan))
      .timeout({seconds: Math.max(1, Math.ceil(limits.timeoutMs / 1000))})
    // sharp strips metadata and converts to sRGB unless told to keep it.
    if (plan.keepMetadata) pipeline = pipeline.keepMetadata()
    const {data, info} = await ENCODE[plan.format](pipeline, plan.quality ?? undefined).toBuffer({resolveWithObject: true})
    return {data, format: plan.format, width: info.width, height: info.pageHeight ?? info.height}
  } catch (error) {
    throw classifySharpError(error)
  }
}

/**
 * libvips reports failures as text only, so the cause is read from the
 * message; anything unrecognised is a decoding failure of the user's image.
 */
export function classifySharpError(error: unknown): ImgscaleError {
  const text = error instanceof Error ? error.message : String(error)
  const firstLine = text.split('\n', 1)[0]!.trim()
  if (/exceeds pixel limit|too large for the/i.test(text)) {
    return new ImgscaleError('image_too_large', `The image is too large to process: ${firstLine}.`, {cause: error})
  }
  if (/unsupported image format/i.test(text)) {
    return new ImgscaleError('unsupported_media_type', 'The image format is not supported.', {cause: error})
  }
  if (/^timeout:/m.test(text)) {
    return new ImgscaleError('timeout', `Processing the image took longer than the time limit.`, {cause: error})
  }
  return new ImgscaleError('corrupt_image', `The image could not be decoded: ${firstLine}.`, {cause: error})
}
