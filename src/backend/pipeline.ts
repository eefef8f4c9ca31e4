import sharp, {type ResizeOptions, type Sharp} from 'sharp'

import {ImgscaleError} from '../errors.js'
import type {Rgba} from '../image/colour.js'
import type {ImageFormat} from '../image/formats.js'
import {sourceSize, type ResizePlan} from '../image/plan.js'

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

/** The only format imgscale writes that has no alpha channel: transparency is flattened onto the background. */
const OPAQUE: ReadonlySet<ImageFormat> = new Set(['jpeg'])

const BLACK = {r: 0, g: 0, b: 0, alpha: 1}

/** Contract section 10: the given background, else black, transparent where the format has alpha. */
function backgroundOf(plan: ResizePlan): Rgba {
  return plan.background ?? (OPAQUE.has(plan.format) ? BLACK : {...BLACK, alpha: 0})
}

/** How the plan's exact size is reached; `contain` pads with the background. */
function resizeOptions(plan: ResizePlan): ResizeOptions {
  if (plan.fit !== 'contain') return {fit: plan.fit, position: plan.position}
  return {fit: 'contain', position: plan.position, background: backgroundOf(plan)}
}

/**
 * Contract section 10's operations before the resize, in its order: crop,
 * rotate, flip, flop. sharp runs its own order whatever the call order (it
 * mirrors before it rotates, and with a resize it rotates before it
 * extracts), so a crop that is also turned or mirrored is cut out in a
 * pipeline of its own first; and after a quarter turn an up-down mirror is
 * a left-right one, so sharp's two mirrors swap to give the contract's
 * result.
 */
async function shape(image: Sharp, plan: Pick<ResizePlan, 'crop' | 'rotate' | 'flip' | 'flop'>): Promise<Sharp> {
  const {crop, rotate} = plan
  if (crop) image = image.extract({left: crop.x, top: crop.y, width: crop.width, height: crop.height})
  const turned = rotate !== 0 || plan.flip || plan.flop
  if (!turned) return image
  if (crop) {
    const {data, info} = await image.raw().toBuffer({resolveWithObject: true})
    image = sharp(data, {raw: {width: info.width, height: info.height, channels: info.channels}})
  }
  if (rotate !== 0) image = image.rotate(rotate)
  const quarter = rotate === 90 || rotate === 270
  if (quarter ? plan.flop : plan.flip) image = image.flip()
  if (quarter ? plan.flip : plan.flop) image = image.flop()
  return image
}

/** The resize and what follows it: grayscale, blur, sharpen, flattening for formats without alpha; then the encoder. */
async function finish(image: Sharp, plan: ResizePlan, timeoutMs: number): Promise<PipelineOutput> {
  image = image.resize(plan.width, plan.height, resizeOptions(plan)).timeout({seconds: Math.max(1, Math.ceil(timeoutMs / 1000))})
  if (plan.grayscale) image = image.grayscale()
  if (plan.blur !== null) image = image.blur(plan.blur)
  if (plan.sharpen !== null) image = image.sharpen({sigma: plan.sharpen})
  if (OPAQUE.has(plan.format)) image = image.flatten({background: backgroundOf(plan)})
  // sharp strips metadata and converts to sRGB unless told to keep it.
  if (plan.keepMetadata) image = image.keepMetadata()
  const {data, info} = await ENCODE[plan.format](image, plan.quality ?? undefined).toBuffer({resolveWithObject: true})
  return {data, format: plan.format, width: info.width, height: info.pageHeight ?? info.height}
}

/** The upload, decoded as strictly as sharp can and turned upright. */
function decode(input: Buffer, animated: boolean, limits: PipelineLimits): Sharp {
  return sharp(input, {
    // Strictest decoding: a truncated or damaged upload fails instead of
    // coming out half grey (field notes D7).
    failOn: 'warning',
    limitInputPixels: limits.maxInputPixels,
    autoOrient: true,
    animated,
  })
}

/** Decode, auto-orient, crop/rotate/mirror, resize to exactly the plan's size, the later operations, encode. */
export async function resizeImage(input: Buffer, plan: ResizePlan, limits: PipelineLimits): Promise<PipelineOutput> {
  try {
    // sharp's constructor throws at once on some inputs (an empty buffer): inside the try too.
    return await finish(await shape(decode(input, plan.frames > 1, limits), plan), plan, limits.timeoutMs)
  } catch (error) {
    throw classifySharpError(error)
  }
}

/**
 * Every output of a job, in order. Several outputs share one decode
 * (contract section 10): the upload is decoded once into raw pixels, shaped
 * once when every output crops, turns and mirrors alike, and shrunk to the
 * size the largest output needs (so JPEG and WebP decode at a fraction of
 * their size); each output is made from those pixels, `limits.concurrency`
 * at a time. Outputs that keep metadata (raw pixels carry none) and
 * animations are made from the upload itself.
 */
export async function resizeImages(input: Buffer, plans: readonly ResizePlan[], limits: PipelineLimits & {concurrency: number}): Promise<PipelineOutput[]> {
  if (plans.length === 1) return [await resizeImage(input, plans[0]!, limits)]
  const fromPixels = plans.filter((plan) => !plan.keepMetadata && plan.frames === 1)
  const pixels = fromPixels.length > 1 ? await decodeShared(input, fromPixels, limits) : undefined
  const make = async (plan: ResizePlan): Promise<PipelineOutput> => {
    if (!pixels || !fromPixels.includes(plan)) return resizeImage(input, plan, limits)
    const {data, info, shaped} = pixels
    try {
      const image = sharp(data, {raw: {width: info.width, height: info.height, channels: info.channels}})
      return await finish(shaped ? image : await shape(image, plan), plan, limits.timeoutMs)
    } catch (error) {
      throw classifySharpError(error)
    }
  }
  const outputs: PipelineOutput[] = new Array(plans.length)
  let next = 0
  let failed = false
  const lane = async (): Promise<void> => {
    // One output failing fails the job: no lane starts another, and none is left running when the reply goes.
    for (let i = next++; i < plans.length && !failed; i = next++) {
      outputs[i] = await make(plans[i]!).catch((error: unknown) => {
        failed = true
        throw error
      })
    }
  }
  const lanes = await Promise.allSettled(Array.from({length: Math.min(limits.concurrency, plans.length)}, lane))
  const failure = lanes.find((lane): lane is PromiseRejectedResult => lane.status === 'rejected')
  if (failure) throw failure.reason
  return outputs
}

interface SharedPixels {
  data: Buffer
  info: {width: number; height: number; channels: 1 | 2 | 3 | 4}
  /** Crop, rotation and mirrors are applied already (the outputs agree on them). */
  shaped: boolean
}

async function decodeShared(input: Buffer, plans: readonly ResizePlan[], limits: PipelineLimits): Promise<SharedPixels> {
  const [first] = plans
  const shaped = plans.every((plan) => samePreOps(plan, first!))
  try {
    let image = decode(input, false, limits)
    if (shaped) {
      image = await shape(image, first!)
      // The plans' sizes follow from the shaped source's; the largest scale any output needs is what the pixels keep.
      const source = sourceSize(await orientedSize(input), first!)
      const scale = Math.min(1, Math.max(...plans.map((plan) => Math.max(plan.width / source.width, plan.height / source.height))))
      if (scale < 1) image = image.resize(Math.ceil(source.width * scale), Math.ceil(source.height * scale), {fit: 'fill'})
    }
    const {data, info} = await image.timeout({seconds: Math.max(1, Math.ceil(limits.timeoutMs / 1000))}).raw().toBuffer({resolveWithObject: true})
    return {data, info: {width: info.width, height: info.height, channels: info.channels}, shaped}
  } catch (error) {
    throw classifySharpError(error)
  }
}

const samePreOps = (a: ResizePlan, b: ResizePlan): boolean =>
  a.rotate === b.rotate && a.flip === b.flip && a.flop === b.flop && JSON.stringify(a.crop) === JSON.stringify(b.crop)

async function orientedSize(input: Buffer): Promise<{width: number; height: number}> {
  const meta = await sharp(input).metadata()
  return meta.autoOrient ?? {width: meta.width!, height: meta.height!}
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
