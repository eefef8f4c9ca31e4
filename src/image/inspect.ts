/**
 * What every image meets before any work, wherever it came from (an
 * upload, an image_url fetched for /resize or for a task): its type and
 * header (probe.ts), then the plan of every output asked for (plan.ts).
 */
import type {UploadBytes} from '../storage/upload-bytes.js'
import type {ResizeOptions} from './options.js'
import {planOutputs, type AcceptedFormats, type PixelLimits, type ResizePlan} from './plan.js'
import {probeImage, type ImageInfo} from './probe.js'

export async function inspectImage(image: UploadBytes | Buffer, outputs: readonly ResizeOptions[], limits: PixelLimits, accepted: AcceptedFormats): Promise<{input: ImageInfo; plans: ResizePlan[]}> {
  const input = await probeImage(Buffer.isBuffer(image) ? {filepath: '', size: image.length, data: image} : image)
  return {input, plans: planOutputs(input, outputs, limits, accepted)}
}
