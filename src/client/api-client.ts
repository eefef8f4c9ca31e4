/**
 * The HTTP client behind the CLI's client commands. Every failure becomes a
 * ClientError whose message is one sentence fit for a user.
 */
import {randomUUID} from 'node:crypto'
import {createWriteStream, openAsBlob} from 'node:fs'
import {rename, rm, stat} from 'node:fs/promises'
import path from 'node:path'
import {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import type {ErrorBody} from '../errors.js'
import {EXTENSION, formatOfMime} from '../image/formats.js'
import type {StatusBody} from '../tasks/task.js'

export interface Uploaded {
  taskId: string
  status: StatusBody['status']
  /** The final status document, when the upload waited and the task ended meanwhile. */
  final?: StatusBody
}

/** How to resize, as the form fields of `POST /upload` take it (contract section 5). */
export interface ResizeRequest {
  /** A scale factor, as the user typed it; or a width and/or height instead. */
  scale?: string | undefined
  width?: number | undefined
  height?: number | undefined
  fit?: string | undefined
  position?: string | undefined
  quality?: number | undefined
  format?: string | undefined
  metadata?: 'strip' | 'keep' | undefined
  /** The operations of contract section 10. */
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
  outputs?: Array<Record<string, string>> | undefined
  callbackUrl?: string | undefined
}

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

/** A FILE argument that is an http(s) URL is sent as `image_url`: the server fetches it. */
export const isImageUrl = (file: string): boolean => /^https?:\/\//i.test(file)

export class ClientError extends Error {
  override readonly name = 'ClientError'
  constructor(
    message: string,
    /** The API's error code, when the server gave one. */
    readonly code?: string,
    /**
     * Set when the same request may be sent again: the connection was lost
     * or refused, or the server said when to retry (Retry-After, in ms).
     */
    readonly retryAfterMs?: number,
  ) {
    super(message)
  }
}

const REQUEST_TIMEOUT_MS = 60_000
const UPLOAD_TIMEOUT_MS = 10 * 60_000
/**
 * Tries of one upload in all. Under one Idempotency-Key a retry cannot make
 * a second task, so a lost connection, a refused one (a restart), a key
 * still being stored and a 503 are tried again, after a growing pause or
 * the server's Retry-After.
 */
const UPLOAD_TRIES = 5
const RETRY_FIRST_PAUSE_MS = 500
const RETRY_MAX_PAUSE_MS = 10_000
/** Long-poll length while waiting: short enough to refresh a progress display. */
const STATUS_WAIT_SECONDS = 2

export class ImgscaleClient {
  constructor(
    readonly baseUrl: string,
    /** Sent as `Authorization: Bearer`; never printed. */
    private readonly apiKey?: string,
  ) {}

  /**
   * Uploads `file`. With `wait`, the server holds its answer up to
   * STATUS_WAIT_SECONDS and, if the task ends by then, sends its final status:
   * most small images need no further request before their download.
   */
  async upload(file: string, resize: ResizeRequest, options: {wait?: boolean} = {}): Promise<Uploaded> {
    const query = options.wait ? `?wait=${STATUS_WAIT_SECONDS}` : ''
    const init = {method: 'POST', body: await form(file, resize), headers: {'Idempotency-Key': randomUUID()}}
    for (let tries = 1; ; tries++) {
      try {
        const response = await this.request(`/upload${query}`, init, UPLOAD_TIMEOUT_MS)
        const body = (await response.json().catch((error: unknown) => {
          throw new ClientError(`The connection to ${this.baseUrl} was lost: ${networkReason(error)}.`, undefined, 0)
        })) as {task_id: string; status: StatusBody['status']}
        // 200 carries the ended task's status document; 202 only says it was accepted.
        return {taskId: body.task_id, status: body.status, ...(response.status === 200 ? {final: body as StatusBody} : {})}
      } catch (error) {
        const retryAfterMs = (error as ClientError).retryAfterMs
        if (retryAfterMs === undefined || tries >= UPLOAD_TRIES) throw error
        const backoff = RETRY_FIRST_PAUSE_MS * 2 ** (tries - 1)
        await new Promise((resolve) => setTimeout(resolve, Math.min(RETRY_MAX_PAUSE_MS, Math.max(backoff, retryAfterMs))))
      }
    }
  }

  /** The task's status; with `waitSeconds`, the server answers as soon as the task ends or after that long. */
  async status(id: string, waitSeconds = 0): Promise<StatusBody> {
    const query = waitSeconds > 0 ? `?wait=${waitSeconds}` : ''
    const response = await this.request(`/status/${encodeURIComponent(id)}${query}`, {}, REQUEST_TIMEOUT_MS + waitSeconds * 1000)
    return (await response.json()) as StatusBody
  }

  /**
   * Saves the result to `out` ('-' for stdout; default `<id>.<ext>`, the
   * extension from the response's Content-Type), writing a `.part` file and
   * renaming it, so `out` is never half written. Returns where it went.
   */
  async saveResult(id: string, out?: Destination, index?: number): Promise<string> {
    const response = await this.request(`/result/${encodeURIComponent(id)}${index === undefined ? '' : `/${index}`}`)
    return save(response, out ?? ((extension) => `${id}${extension ? `.${extension}` : ''}`))
  }

  /**
   * `POST /resize`: the image comes back in the answer and is saved like a
   * result: to `out`, '-' for stdout, or the path `out` makes of the
   * result's extension. Returns where it went.
   */
  async resize(file: string, resize: ResizeRequest, out: Destination): Promise<string> {
    const response = await this.request('/resize', {method: 'POST', body: await form(file, resize)}, UPLOAD_TIMEOUT_MS)
    return save(response, out)
  }
  /** Cancels the task if it is unfinished, else forgets it (`DELETE /tasks/<id>`). */
  async delete(id: string): Promise<void> {
    await this.request(`/tasks/${encodeURIComponent(id)}`, {method: 'DELETE'})
  }

  /**
   * Long-polls until the task is done or failed, calling onUpdate with each
   * status seen (at least every STATUS_WAIT_SECONDS, for a progress display).
   */
  async waitForEnd(id: string, timeoutMs: number, onUpdate: (status: StatusBody) => void = () => {}): Promise<StatusBody> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const waitSeconds = Math.min(STATUS_WAIT_SECONDS, Math.max(0, Math.floor((deadline - Date.now()) / 1000)))
      const status = await this.status(id, waitSeconds)
      onUpdate(status)
      if (status.status === 'done' || status.status === 'failed' || status.status === 'cancelled') return status
      if (Date.now() >= deadline) {
        throw new ClientError(`Task ${id} is still ${status.status} after ${Math.round(timeoutMs / 1000)} s; check later with \`imgscale status ${id}\`.`)
      }
      // Under a second left: a short pause rather than a tight loop of plain polls.
      if (waitSeconds === 0) await new Promise((resolve) => setTimeout(resolve, Math.min(250, deadline - Date.now())))
    }
  }

  private async request(route: string, init: RequestInit = {}, timeoutMs = REQUEST_TIMEOUT_MS): Promise<Response> {
    let response: Response
    try {
      const headers = {...(init.headers as Record<string, string> | undefined), ...(this.apiKey ? {Authorization: `Bearer ${this.apiKey}`} : {})}
      response = await fetch(new URL(route, this.baseUrl), {...init, headers, signal: AbortSignal.timeout(timeoutMs)})
    } catch (error) {
      throw new ClientError(`Cannot reach the imgscale server at ${this.baseUrl}: ${networkReason(error)}.`, undefined, connectionLost(error) ? 0 : undefined)
    }
    if (response.ok) return response
    const apiError = await response
      .json()
      .then((body) => (body as {error?: ErrorBody}).error)
      .catch(() => undefined)
    if (apiError?.code === 'unauthorized') {
      throw new ClientError(`${apiError.message} Give it with --api-key or $IMGSCALE_API_KEY.`, apiError.code)
    }
    const retryAfter = Number(response.headers.get('retry-after') ?? Number.NaN)
    const retryAfterMs = Number.isFinite(retryAfter) && retryAfter >= 0 ? retryAfter * 1000 : undefined
    if (apiError) throw new ClientError(apiError.message, apiError.code, retryAfterMs)
    throw new ClientError(`The server at ${this.baseUrl} answered ${response.status} ${response.statusText}.`, undefined, retryAfterMs)
  }
}

/** Where a downloaded image goes: a path, '-' for stdout, or a path made from the image's extension. */
export type Destination = string | ((extension: string | undefined) => string)

/** Writes a `.part` file and renames it, so the target is never half written. */
async function save(response: Response, out: Destination): Promise<string> {
  const body = Readable.fromWeb(response.body as import('node:stream/web').ReadableStream)
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
    throw new ClientError(`Cannot write ${target}: ${reason}.`)
  }
  return target
}

/** The multipart form of `/upload` and `/resize`: the file (or its URL) and the resize fields. */
async function form(file: string, resize: ResizeRequest): Promise<FormData> {
  const body = new FormData()
  if (isImageUrl(file)) {
    body.append('image_url', file)
  } else {
    const info = await stat(file).catch((error: NodeJS.ErrnoException) => {
      throw new ClientError(`Cannot read ${file}: ${error.code === 'ENOENT' ? 'no such file' : error.code === 'EACCES' ? 'permission denied' : error.message}.`)
    })
    if (!info.isFile()) throw new ClientError(`Cannot upload ${file}: it is not a regular file.`)
    body.append('image', await openAsBlob(file), path.basename(file))
  }
  for (const [key, field] of Object.entries(FIELDS)) {
    const value = resize[key as keyof ResizeRequest]
    if (value !== undefined) body.append(field, typeof value === 'object' ? JSON.stringify(value) : String(value))
  }
  return body
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
