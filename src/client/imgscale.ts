/**
 * The client library (`import {Imgscale} from 'imgscale'`), and the client
 * commands' one client: multipart uploads, long polls, downloads, retries,
 * and every failure as an ImgscaleClientError carrying the contract's code.
 *
 *   const imgscale = new Imgscale({url: 'http://127.0.0.1:5454'})
 *   const {taskId} = await imgscale.submit('photo.jpg', {width: 320, format: 'webp'})
 *   const status = await imgscale.wait(taskId)
 *   const image = await imgscale.result(taskId)
 */
import {randomUUID} from 'node:crypto'
import {createWriteStream, openAsBlob} from 'node:fs'
import {rename, rm, stat} from 'node:fs/promises'
import path from 'node:path'
import {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'
import type {ReadableStream as WebReadableStream} from 'node:stream/web'

import type {ErrorBody} from '../errors.js'
import {EXTENSION, formatOfMime, type ImageFormat} from '../image/formats.js'
import {imagePath} from '../img/image-url.js'
import type {StatusBody} from '../tasks/task.js'
import {ImgscaleClientError} from './client-error.js'

export interface ImgscaleOptions {
  /** The server, e.g. `http://[::1]:5454`; default `http://127.0.0.1:5454`. */
  url?: string
  /** Sent as `Authorization: Bearer` to a server that asks for one; never printed. */
  apiKey?: string
  /** Deadline of one request (default 60 s)... */
  timeoutMs?: number
  /** ...and of one that carries an image (default 10 minutes). */
  uploadTimeoutMs?: number
  /**
   * Tries of one request in all (default 5). A lost or refused connection,
   * a `503` and an upload still being stored are tried again after a
   * growing pause (0.5, 1, 2, 4 s) or the server's Retry-After: uploads go
   * under an Idempotency-Key, so a retry never makes a second task.
   */
  tries?: number
  /** The key `imageUrl` and `srcset` sign `/img` URLs with (the server's --url-key); none: `unsafe`. */
  urlKey?: string
}

/** What can be sent: a file's path, an http(s) URL (string or URL) for the server to fetch, bytes, or a stream of them. */
export type ImageInput = string | URL | Buffer | Uint8Array | Readable

/** The resize fields of contract sections 5 and 10, as `POST /upload` takes them. */
export interface ResizeRequest {
  /** A scale factor; or a width and/or height instead. */
  scale?: string | number | undefined
  width?: number | undefined
  height?: number | undefined
  fit?: string | undefined
  position?: string | undefined
  quality?: number | undefined
  format?: string | undefined
  metadata?: 'strip' | 'keep' | undefined
  crop?: string | undefined
  rotate?: number | undefined
  flip?: boolean | undefined
  flop?: boolean | undefined
  grayscale?: boolean | undefined
  blur?: number | undefined
  sharpen?: number | undefined
  background?: string | undefined
  preset?: string | undefined
  /** Several outputs: each an object of option fields, sent as the `outputs` JSON list. */
  outputs?: Array<Record<string, string | number | boolean>> | undefined
  callbackUrl?: string | undefined
}

export interface SubmitOptions extends ResizeRequest {
  /** Hold the upload's answer up to this many seconds; if the task ends by then, `final` is its status. */
  wait?: number
  /** Default: a fresh one, the same for every retry of this call. */
  idempotencyKey?: string
  /** The name the upload gives the image (bytes and streams: `image`). */
  filename?: string
}

export interface Submitted {
  taskId: string
  status: StatusBody['status']
  /** The final status document, when the upload waited and the task ended meanwhile. */
  final?: StatusBody
}

export interface ResizedImage {
  image: Buffer
  format: ImageFormat | undefined
  width: number
  height: number
}

/** The options of an `/img` URL (contract section 12): one output, nothing to call back. */
export type ImageUrlOptions = Omit<ResizeRequest, 'outputs' | 'callbackUrl'>

/** Where a downloaded image goes: a path, '-' for stdout, or a path made from the image's extension. */
export type Destination = string | ((extension: string | undefined) => string)

const FIELDS: Record<keyof ResizeRequest, string> = {
  scale: 'scale_factor',
  width: 'width',
  height: 'height',
  fit: 'fit',
  position: 'position',
  quality: 'quality',
  format: 'format',
  metadata: 'metadata',
  crop: 'crop',
  rotate: 'rotate',
  flip: 'flip',
  flop: 'flop',
  grayscale: 'grayscale',
  blur: 'blur',
  sharpen: 'sharpen',
  background: 'background',
  preset: 'preset',
  outputs: 'outputs',
  callbackUrl: 'callback_url',
}

/** What a request's options are as the form's text fields; a name that is not an option is refused at once, naming the right one. */
function fieldsOf(options: Record<string, unknown>, allowed: ReadonlyArray<keyof ResizeRequest>): Record<string, string> {
  const fields: Record<string, string> = {}
  for (const [key, value] of Object.entries(options)) {
    if (!(allowed as readonly string[]).includes(key)) {
      const meant = Object.entries(FIELDS).find(([option, field]) => field === key && allowed.includes(option as keyof ResizeRequest))?.[0]
      throw new ImgscaleClientError(
        meant ? `${key} is not an option here; use ${meant} (the library's name for the ${key} field).` : `${key} is not an option here; the options are ${allowed.join(', ')}.`,
        'client',
      )
    }
    if (value !== undefined) fields[FIELDS[key as keyof ResizeRequest]] = typeof value === 'object' ? JSON.stringify(value) : String(value)
  }
  return fields
}

const UPLOAD_OPTIONS = Object.keys(FIELDS) as Array<keyof ResizeRequest>
const URL_OPTIONS = UPLOAD_OPTIONS.filter((option) => option !== 'outputs' && option !== 'callbackUrl')

/**
 * `/img/<signature>/<options>/<source>` (contract section 12), signed with
 * `key` (else `unsafe`): `source` is a path under the server's --source-dir,
 * or an http(s) URL under one of its --source-origin. Prefix it with the
 * server's (or its CDN's) address.
 */
export function signImageUrl(source: string, options: ImageUrlOptions = {}, key?: string): string {
  try {
    return imagePath(source, fieldsOf(options, URL_OPTIONS), key)
  } catch (error) {
    if (error instanceof ImgscaleClientError) throw error
    throw new ImgscaleClientError((error as Error).message, 'client', {cause: error})
  }
}

/** A FILE argument that is an http(s) URL is sent as `image_url`: the server fetches it. */
const isImageUrl = (file: string): boolean => /^https?:\/\//i.test(file)

const RETRY_FIRST_PAUSE_MS = 500
const RETRY_MAX_PAUSE_MS = 10_000
/**
 * Long-poll length while waiting, and how long the CLI's waiting uploads
 * hold their answer: short enough to refresh a progress display, long
 * enough that most small images need no other request before their download.
 */
export const SHORT_WAIT_SECONDS = 2

export class Imgscale {
  readonly url: string
  private readonly apiKey: string | undefined
  private readonly timeoutMs: number
  private readonly uploadTimeoutMs: number
  private readonly tries: number
  private readonly urlKey: string | undefined

  constructor(options: ImgscaleOptions = {}) {
    this.url = (options.url ?? 'http://127.0.0.1:5454').replace(/\/+$/, '')
    this.apiKey = options.apiKey
    this.timeoutMs = options.timeoutMs ?? 60_000
    this.uploadTimeoutMs = options.uploadTimeoutMs ?? 10 * 60_000
    this.tries = Math.max(1, options.tries ?? 5)
    this.urlKey = options.urlKey
  }

  /** `POST /upload`: the task's id at once (and with `wait`, its end if it came in time). */
  async submit(input: ImageInput, options: SubmitOptions = {}): Promise<Submitted> {
    const {wait, idempotencyKey = randomUUID(), filename, ...resize} = options
    const query = wait ? `?wait=${wait}` : ''
    const body = await form(input, resize, filename)
    // The answer is read inside the retries: one cut off after the task was made is asked for again, under the same key.
    return this.request(`/upload${query}`, {method: 'POST', body, headers: {'Idempotency-Key': idempotencyKey}}, this.uploadTimeoutMs, async (response) => {
      const answer = (await response.json()) as {task_id: string; status: StatusBody['status']}
      // 200 carries the ended task's status document; 202 only says it was accepted.
      return {taskId: answer.task_id, status: answer.status, ...(response.status === 200 ? {final: answer as StatusBody} : {})}
    })
  }

  /** The task's status document; with `wait` (seconds), the server answers as soon as the task ends or after that long. */
  async status(id: string, options: {wait?: number} = {}): Promise<StatusBody> {
    const waitSeconds = options.wait ?? 0
    const query = waitSeconds > 0 ? `?wait=${waitSeconds}` : ''
    return this.request(`/status/${encodeURIComponent(id)}${query}`, {}, this.timeoutMs + waitSeconds * 1000, async (response) => (await response.json()) as StatusBody)
  }

  /**
   * Long-polls until the task has ended (done, failed or cancelled) and
   * returns its status document, calling `onUpdate` with each status seen.
   * Past `timeoutMs` (default 5 minutes): ImgscaleClientError `timeout`.
   */
  async wait(id: string, options: {timeoutMs?: number; onUpdate?: (status: StatusBody) => void} = {}): Promise<StatusBody> {
    const {timeoutMs = 5 * 60_000, onUpdate = () => {}} = options
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const waitSeconds = Math.min(SHORT_WAIT_SECONDS, Math.max(0, Math.floor((deadline - Date.now()) / 1000)))
      const status = await this.status(id, {wait: waitSeconds})
      onUpdate(status)
      if (status.status === 'done' || status.status === 'failed' || status.status === 'cancelled') return status
      if (Date.now() >= deadline) {
        throw new ImgscaleClientError(`Task ${id} is still ${status.status} after ${Math.round(timeoutMs / 1000)} s; check later with \`imgscale status ${id}\`.`, 'timeout')
      }
      // Under a second left: a short pause rather than a tight loop of plain polls.
      if (waitSeconds === 0) await pause(Math.min(250, deadline - Date.now()))
    }
  }

  /** A done task's image (output `n`, for a task made with several), in memory. */
  async result(id: string, options: {output?: number} = {}): Promise<Buffer> {
    return this.request(resultRoute(id, options.output), {}, this.timeoutMs, async (response) => Buffer.from(await response.arrayBuffer()))
  }

  /** The same, as a stream, with the format its Content-Type names. */
  async resultStream(id: string, options: {output?: number} = {}): Promise<{stream: Readable; format: ImageFormat | undefined}> {
    const response = await this.request(resultRoute(id, options.output))
    return {stream: bodyOf(response), format: formatOfMime(response.headers.get('content-type') ?? '')}
  }

  /**
   * Saves a done task's image to `out` ('-' for stdout; default
   * `<id>.<ext>`), through a `.part` file renamed at the end, so `out` is
   * never half written. Returns where it went.
   */
  async saveResult(id: string, out?: Destination, output?: number): Promise<string> {
    return save(await this.request(resultRoute(id, output)), out ?? ((extension) => `${id}${extension ? `.${extension}` : ''}`))
  }

  /** `POST /resize`: no task; the image comes back in the answer. */
  async resize(input: ImageInput, options: ResizeRequest & {filename?: string} = {}): Promise<ResizedImage> {
    const response = await this.postResize(input, options)
    return {
      image: Buffer.from(await response.arrayBuffer()),
      format: formatOfMime(response.headers.get('content-type') ?? ''),
      width: Number(response.headers.get('x-imgscale-width')),
      height: Number(response.headers.get('x-imgscale-height')),
    }
  }

  /** The same, saved like a result: to `out`, '-' for stdout, or the path `out` makes of its extension. */
  async resizeTo(input: ImageInput, options: ResizeRequest, out: Destination): Promise<string> {
    return save(await this.postResize(input, options), out)
  }

  /** The `/img` URL of `source` with these options, on this server, signed with the `urlKey` given to the constructor. */
  imageUrl(source: string, options: ImageUrlOptions = {}): string {
    return this.url + signImageUrl(source, options, this.urlKey)
  }

  /** An `<img srcset>` value: the `/img` URL of `source` at each width, e.g. `.../w_320/... 320w, .../w_640/... 640w`. */
  srcset(source: string, widths: readonly number[], options: Omit<ImageUrlOptions, 'width' | 'scale'> = {}): string {
    return widths.map((width) => `${this.imageUrl(source, {...options, width})} ${width}w`).join(', ')
  }

  /** `DELETE /tasks/<id>`: cancels the task if it is unfinished, else forgets it. */
  async delete(id: string): Promise<void> {
    await this.request(`/tasks/${encodeURIComponent(id)}`, {method: 'DELETE'})
  }

  private async postResize(input: ImageInput, {filename, ...resize}: ResizeRequest & {filename?: string}): Promise<Response> {
    return this.request('/resize', {method: 'POST', body: await form(input, resize, filename)}, this.uploadTimeoutMs)
  }

  /**
   * One request, tried again (see `tries`) while the failure says it may
   * be; `read` takes what is needed from a 2xx answer, inside the tries, so
   * an answer cut off midway counts as a lost connection.
   */
  private async request(route: string, init?: RequestInit, timeoutMs?: number): Promise<Response>
  private async request<T>(route: string, init: RequestInit, timeoutMs: number, read: (response: Response) => Promise<T>): Promise<T>
  private async request<T>(route: string, init: RequestInit = {}, timeoutMs = this.timeoutMs, read?: (response: Response) => Promise<T>): Promise<T | Response> {
    for (let tries = 1; ; tries++) {
      try {
        const response = await this.requestOnce(route, init, timeoutMs)
        if (!read) return response
        return await read(response).catch((error: unknown) => {
          throw new ImgscaleClientError(`The connection to ${this.url} was lost: ${networkReason(error)}.`, 'unreachable', {cause: error, retryAfterMs: 0})
        })
      } catch (error) {
        const retryAfterMs = (error as ImgscaleClientError).retryAfterMs
        if (retryAfterMs === undefined || tries >= this.tries) throw error
        await pause(Math.min(RETRY_MAX_PAUSE_MS, Math.max(RETRY_FIRST_PAUSE_MS * 2 ** (tries - 1), retryAfterMs)))
      }
    }
  }

  private async requestOnce(route: string, init: RequestInit, timeoutMs: number): Promise<Response> {
    let response: Response
    try {
      const headers = {...(init.headers as Record<string, string> | undefined), ...(this.apiKey ? {Authorization: `Bearer ${this.apiKey}`} : {})}
      response = await fetch(`${this.url}${route}`, {...init, headers, signal: AbortSignal.timeout(timeoutMs)})
    } catch (error) {
      throw new ImgscaleClientError(`Cannot reach the imgscale server at ${this.url}: ${networkReason(error)}.`, 'unreachable', {
        cause: error,
        ...(connectionLost(error) ? {retryAfterMs: 0} : {}),
      })
    }
    if (response.ok) return response
    const apiError = await response
      .json()
      .then((body) => (body as {error?: ErrorBody}).error)
      .catch(() => undefined)
    const retryAfter = Number(response.headers.get('retry-after') ?? Number.NaN)
    // A 503 may pass, and a 409 with Retry-After is an upload still being stored under the same key.
    const retryAfterMs = Number.isFinite(retryAfter) && retryAfter >= 0 && (response.status === 503 || apiError?.code === 'idempotency_conflict') ? retryAfter * 1000 : undefined
    const options = {status: response.status, ...(retryAfterMs === undefined ? {} : {retryAfterMs})}
    if (apiError?.code === 'unauthorized') throw new ImgscaleClientError(`${apiError.message} Give it with --api-key or $IMGSCALE_API_KEY.`, apiError.code, options)
    if (apiError) throw new ImgscaleClientError(apiError.message, apiError.code, options)
    throw new ImgscaleClientError(`The server at ${this.url} answered ${response.status} ${response.statusText}.`, 'internal', options)
  }
}

const resultRoute = (id: string, output?: number): string => `/result/${encodeURIComponent(id)}${output === undefined ? '' : `/${output}`}`

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

const bodyOf = (response: Response): Readable => Readable.fromWeb(response.body as WebReadableStream)

/** Writes a `.part` file and renames it, so the target is never half written. */
async function save(response: Response, out: Destination): Promise<string> {
  const body = bodyOf(response)
  if (out === '-') {
    await pipeline(body, process.stdout)
    return out
  }
  const format = formatOfMime(response.headers.get('content-type') ?? '')
  const target = typeof out === 'string' ? out : out(format && EXTENSION[format])
  const partial = `${target}.part`
  try {
    await pipeline(body, createWriteStream(partial))
    await rename(partial, target)
  } catch (error) {
    await rm(partial, {force: true})
    const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'its folder does not exist' : (error as Error).message
    throw new ImgscaleClientError(`Cannot write ${target}: ${reason}.`, 'client', {cause: error})
  }
  return target
}

/** The multipart form of `/upload` and `/resize`: the image (or its URL) and the resize fields. */
async function form(input: ImageInput, resize: ResizeRequest, filename?: string): Promise<FormData> {
  const fields = fieldsOf(resize as Record<string, unknown>, UPLOAD_OPTIONS)
  const body = new FormData()
  const url = typeof input === 'string' ? (isImageUrl(input) ? input : undefined) : input instanceof URL && input.protocol !== 'file:' ? input.href : undefined
  if (url !== undefined) {
    body.append('image_url', url)
  } else if (typeof input === 'string' || input instanceof URL) {
    const file = typeof input === 'string' ? input : decodeURIComponent(input.pathname)
    const info = await stat(file).catch((error: NodeJS.ErrnoException) => {
      const reason = error.code === 'ENOENT' ? 'no such file' : error.code === 'EACCES' ? 'permission denied' : error.message
      throw new ImgscaleClientError(`Cannot read ${file}: ${reason}.`, 'client', {cause: error})
    })
    if (!info.isFile()) throw new ImgscaleClientError(`Cannot upload ${file}: it is not a regular file.`, 'client')
    body.append('image', await openAsBlob(file), filename ?? path.basename(file))
  } else {
    const bytes = input instanceof Readable ? await collect(input) : input
    body.append('image', new Blob([bytes]), filename ?? 'image')
  }
  for (const [field, value] of Object.entries(fields)) body.append(field, value)
  return body
}

/** A stream's bytes: a multipart part needs its length before it is sent. */
async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array))
  return Buffer.concat(chunks)
}

/** The request never got an answer, and sending it again may: not a timeout, not a name that does not resolve. */
function connectionLost(error: unknown): boolean {
  const code = (error as {cause?: {code?: string}})?.cause?.code
  return code === 'ECONNRESET' || code === 'ECONNREFUSED' || code === 'EPIPE' || code === 'UND_ERR_SOCKET' || code === 'UND_ERR_CLOSED'
}

function networkReason(error: unknown): string {
  const cause = (error as {cause?: {code?: string}})?.cause
  switch (cause?.code ?? (error as {name?: string})?.name) {
    case 'ECONNREFUSED':
      return 'connection refused (is `imgscale serve` running?)'
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return 'host not found'
    case 'TimeoutError':
      return 'it did not answer in time'
    case 'ECONNRESET':
      return 'the connection was reset'
    default:
      return (cause as Error | undefined)?.message ?? (error as Error).message
  }
}
