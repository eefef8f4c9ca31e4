/**
 * `GET /img/<signature>/<options>/<source>` and `HEAD` (contract section 12):
 * an image by URL, for `<img src>`, browser caches and CDNs. The signature
 * is checked first (API keys do not apply: an `<img>` sends no header), then
 * the options (img/img-options.ts) and the source (img/source.ts); then the
 * answer comes from the result cache, or is made once, on the same queue
 * and workers as `/resize`, however many requests ask for it at once.
 * A cache hit touches no queue, worker or task.
 */
import type {Context, Next} from 'koa'

import {cacheKey, type Entry, type ResultCache} from '../cache/result-cache.js'
import type {ServiceConfig} from '../config.js'
import {ImgscaleError, shuttingDown} from '../errors.js'
import type {ImageFetcher} from '../fetch/image-fetcher.js'
import {EXTENSION, formatOfMime, MIME_TYPE} from '../image/formats.js'
import {inspectImage} from '../image/inspect.js'
import {acceptedFormats, type AcceptedFormats} from '../image/plan.js'
import type {ResizeOptions} from '../image/options.js'
import {imgOptions} from '../img/img-options.js'
import {signatureMatches, UNSIGNED} from '../img/signature.js'
import {locateSource, readLocal, type LocatedSource, type SourceRules} from '../img/source.js'
import type {Metrics} from '../metrics.js'
import type {TaskBackend} from '../tasks/backend.js'
import {processingFailure, stemOf} from './resize.js'
import type {FormRules} from './upload-form.js'

export interface ImgDeps {
  config: ServiceConfig
  rules: FormRules
  sources: SourceRules
  tasks: TaskBackend
  fetcher: ImageFetcher
  cache: ResultCache
  metrics: Metrics
  draining: () => boolean
}

const PREFIX = '/img/'
const SHAPE = 'An image URL is /img/<signature>/<options>/<source>, e.g. /img/unsafe/w_320,f_webp/local/photos/cat.jpg.'

/** Koa middleware: answers everything under /img/, before API keys are asked for. */
export function imgRoute(deps: ImgDeps) {
  // No image is made for a request that leaves: another may be sharing it, and it is kept for the next.
  const stays = new AbortController().signal
  return async function img(ctx: Context, next: Next): Promise<void> {
    if (ctx.path !== '/img' && !ctx.path.startsWith(PREFIX)) return next()
    try {
      if (ctx.method !== 'GET' && ctx.method !== 'HEAD') {
        throw new ImgscaleError('method_not_allowed', `${ctx.method} is not allowed on /img URLs; allowed: GET, HEAD.`, {headers: {Allow: 'GET, HEAD'}})
      }
      await answer(ctx, deps, stays)
    } catch (error) {
      // An error is never cached, by a browser or by a CDN.
      for (const header of ['ETag', 'Vary', 'X-Imgscale-Cache', 'X-Imgscale-Width', 'X-Imgscale-Height', 'Content-Disposition']) ctx.remove(header)
      ctx.set('Cache-Control', 'no-store')
      throw error
    }
  }
}

async function answer(ctx: Context, deps: ImgDeps, stays: AbortSignal): Promise<void> {
  // ctx.path is the request line's path, still percent-encoded: what was signed.
  const [signature = '', options = '', ...source] = ctx.path.slice(PREFIX.length).split('/')
  if (signature === '' || options === '' || source.length === 0) throw new ImgscaleError('not_found', `There is no image at ${ctx.path.slice(0, 80)}. ${SHAPE}`)
  const signed = ctx.path.slice(PREFIX.length + signature.length)
  checkSignature(signature, signed, deps.config.urlKeys)

  const resize = imgOptions(options, deps.rules)
  const located = await locateSource(source.join('/'), deps.sources)
  const accepted: AcceptedFormats = resize.format === 'auto' ? acceptedFormats(ctx.get('Accept')) : []
  // Named by what decides the bytes: the source as it is now, the options as parsed, and what the Accept header allowed.
  const key = cacheKey('img', located.identity, JSON.stringify(resize), accepted.join(','))
  const {entry, provenance} = await deps.cache.getOrMake(key, () => make(located, resize, accepted, deps, stays))
  deps.metrics.imgAnswered(provenance)

  const format = formatOfMime(entry.meta.type)
  ctx.status = 200
  ctx.type = entry.meta.type
  ctx.set('Cache-Control', `public, max-age=${deps.config.imgMaxAgeSeconds}`)
  if (resize.format === 'auto') ctx.set('Vary', 'Accept')
  ctx.set('X-Imgscale-Cache', provenance)
  ctx.set('X-Imgscale-Width', String(entry.meta.width))
  ctx.set('X-Imgscale-Height', String(entry.meta.height))
  ctx.set('Content-Disposition', `inline; filename="${stemOf(located.name)}.${format ? EXTENSION[format] : 'img'}"`)
  ctx.etag = entry.sha256
  ctx.body = entry.body
  if (ctx.fresh) {
    ctx.status = 304
    ctx.body = null
  }
}

function checkSignature(signature: string, signed: string, keys: readonly string[]): void {
  if (keys.length === 0) {
    if (signature !== UNSIGNED) throw new ImgscaleError('invalid_signature', `This server has no URL key: the signature segment must be ${UNSIGNED}.`)
    return
  }
  if (!signatureMatches(signature, signed, keys)) {
    throw new ImgscaleError('invalid_signature', 'The URL is not signed with a key of this server (HMAC-SHA256 of /<options>/<source>, base64url).')
  }
}

/** A miss: the source's bytes, judged and planned like an upload, resized on server B. */
async function make(located: LocatedSource, resize: ResizeOptions, accepted: AcceptedFormats, deps: ImgDeps, stays: AbortSignal): Promise<Omit<Entry, 'sha256'>> {
  if (deps.draining()) throw shuttingDown()
  const bytes = await sourceBytes(located, deps)
  const {plans} = await inspectImage(bytes, [resize], deps.config, accepted)
  let result
  try {
    result = await deps.tasks.resize(plans, bytes, stays)
  } catch (error) {
    const failure = processingFailure(error)
    deps.metrics.imgJobEnded(failure.code)
    throw failure
  }
  deps.metrics.imgJobEnded('')
  const {format, width, height} = result.header.outputs[0]!
  return {meta: {type: MIME_TYPE[format], width, height}, body: result.body}
}

/** A local file is read; a URL is fetched once for all its sizes, its bytes kept for --source-ttl. */
async function sourceBytes(located: LocatedSource, deps: ImgDeps): Promise<Buffer> {
  if (located.kind === 'local') return readLocal(located, deps.config.maxUploadBytes)
  const {entry} = await deps.cache.getOrMake(cacheKey('source', located.url), async () => ({
    meta: {type: 'application/octet-stream', expires: Date.now() + deps.config.sourceTtlMs},
    body: await deps.fetcher.fetch(located.url),
  }))
  return entry.body
}
