/**
 * `POST /resize` (contract section 9): the same form and checks as
 * `/upload`, the same queue and workers, and the image back in the answer.
 * No task is made and nothing is stored: the upload and the result live in
 * memory only while the request runs. A client that leaves cancels the work.
 */
import type {Context} from 'koa'

import type {ServiceConfig} from '../config.js'
import {ImgscaleError} from '../errors.js'
import type {ImageFetcher} from '../fetch/image-fetcher.js'
import {EXTENSION, MIME_TYPE} from '../image/formats.js'
import {inspectImage} from '../image/inspect.js'
import type {ResizePlan} from '../image/plan.js'
import type {Metrics} from '../metrics.js'
import {readUpload} from '../storage/upload-bytes.js'
import type {TaskBackend} from '../tasks/backend.js'
import {checkUpload, type CheckedUpload} from './upload.js'
import type {FormRules} from './upload-form.js'

/** What processing reveals, as the answer to a request that waited for it (a task would fail with 422 instead). */
const STATUS_OF = {timeout: 504, worker_failed: 502} as Partial<Record<string, number>>

/** A processing failure as the answer of a request that waited for the image (/resize, /img). */
export function processingFailure(error: unknown): ImgscaleError {
  const failure = error instanceof ImgscaleError ? error : new ImgscaleError('internal', 'The image could not be processed.', {cause: error})
  const status = STATUS_OF[failure.code]
  return status ? new ImgscaleError(failure.code, failure.message, {status}) : failure
}

export function resizeHandler(config: ServiceConfig, rules: FormRules, tasks: TaskBackend, fetcher: ImageFetcher, metrics: Metrics) {
  // Every /resize body is received in memory (holdInMemory, required): nothing is spooled to discard.
  return async function resize(ctx: Context): Promise<void> {
    const checked = await checkUpload(ctx, config, rules)
    const {form} = checked
    if (form.callbackUrl !== null) {
      throw new ImgscaleError('invalid_request', 'callback_url is for tasks (POST /upload); /resize answers with the image itself.')
    }
    if (form.outputs.length > 1) throw new ImgscaleError('invalid_request', '/resize answers with one image; for several outputs, make a task (POST /upload).')
    const left = new AbortController()
    ctx.res.once('close', () => {
      if (!ctx.res.writableFinished) left.abort()
    })
    const {image, plans} = await source(checked, config, fetcher, left.signal)
    let result
    try {
      result = await tasks.resize(plans, image, left.signal)
    } catch (error) {
      const failure = processingFailure(error)
      metrics.resizeEnded(failure.code)
      throw failure
    }
    metrics.resizeEnded('')
    const {format, width, height} = result.header.outputs[0]!
    ctx.status = 200
    ctx.type = MIME_TYPE[format]
    ctx.length = result.body.length
    ctx.set('Content-Disposition', `inline; filename="${stemOf(form.image ? form.image.originalFilename : new URL(form.imageUrl!).pathname)}.${EXTENSION[format]}"`)
    ctx.set('X-Imgscale-Width', String(width))
    ctx.set('X-Imgscale-Height', String(height))
    ctx.body = result.body
  }
}

/**
 * The image and its plan: the upload's, or for an image_url fetched now,
 * here, and judged as an upload would be (502 fetch_failed, 413, 415, 422).
 */
async function source(checked: CheckedUpload, config: ServiceConfig, fetcher: ImageFetcher, signal: AbortSignal): Promise<{image: Buffer; plans: ResizePlan[]}> {
  const {form, accepted, plans} = checked
  if (form.image && plans) return {image: await readUpload(form.image), plans}
  const image = await fetcher.fetch(form.imageUrl!, signal)
  return {image, plans: (await inspectImage(image, form.outputs, config, accepted)).plans}
}

/**
 * The upload's file name without folders or extension, reduced to
 * characters safe inside a quoted header value; `image` when nothing is left.
 */
export function stemOf(filename: string | null | undefined): string {
  const base = (filename ?? '').split(/[/\\]/).pop()!.replace(/\.[^.]*$/, '')
  const safe = base.replace(/[^\w.\- ]/g, '_').slice(0, 100).trim()
  return safe === '' || /^[._]+$/.test(safe) ? 'image' : safe
}
