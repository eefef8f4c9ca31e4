import sharp, {type Sharp} from 'sharp'

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
 * these too, so both sides make the same bytes.
 */
export const ENCODE: Record<ImageFormat, (image: Sharp) => Sharp> = {
  jpeg: (image) => image.jpeg({quality: 80}),
  png: (image) => image.png(),
  webp: (image) => image.webp({quality: 80}),
  avif: (image) => image.avif({quality: 50, effort: 2}),
  gif: (image) => image.gif({effort: 3}),
  tiff: (image) => image.tiff(),
}

/** Decode (from bytes, or from a file libvips reads itself), auto-orient, resize to exactly the plan's size, encode. */
export async function resizeImage(input: Buffer | string, plan: ResizePlan, limits: PipelineLimits): Promise<PipelineOutput> {
  const pipeline = sharp(input, {
    // Strictest decoding: a truncated or damaged upload fails instead of
    // coming out half grey (field notes D7).
    failOn: 'warning',
    limitInputPixels: limits.maxInputPixels,
    autoOrient: true,
    animated: plan.frames > 1,
  })
    .resize(plan.width, plan.height, {fit: 'fill'})
    .timeout({seconds: Math.max(1, Math.ceil(limits.timeoutMs / 1000))})

  try {
    const {data, info} = await ENCODE[plan.format](pipeline).toBuffer({resolveWithObject: true})
    return {data, format: plan.format, width: info.width, height: info.pageHeight ?? info.height}
  } catch (error) {
    // libvips names the file it failed on; the user is told about "the upload", not our paths.
    throw classifySharpError(typeof input === 'string' && error instanceof Error ? new Error(error.message.replaceAll(input, 'the upload')) : error)
  }
}

/**
 * libvips reports failures as text only, so the cause is read from the
 * message; anything unrecognised is a decoding failure of the user's image.
 */
export function classifySharpError(error: unknown): ImgscaleError {
  const text = error instanceof Error ? error.message : String(error)
  const firstLine = text.split('\n', 1)[0]!.trim()
  if (/input file is missing/i.test(text)) {
    return new ImgscaleError('internal', 'The uploaded image is missing on the server.', {cause: error})
  }
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
