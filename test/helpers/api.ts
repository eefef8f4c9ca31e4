/** Talking to server A in tests: uploads as curl -F would send them, and polling. */
import {expect} from 'chai'

import {until} from './processes.js'

export interface UploadParts {
  image?: Buffer
  filename?: string
  /** Content-Type the client claims for the file; the server must ignore it. */
  type?: string
  scale?: string
  format?: string
  fields?: Record<string, string>
}

export interface RequestOptions {
  query?: string | undefined
  headers?: Record<string, string>
  signal?: AbortSignal
}

export function upload(baseUrl: string, parts: UploadParts, request: RequestOptions = {}): Promise<Response> {
  return postForm(baseUrl, '/upload', parts, request)
}

/** `POST /resize`: the same form, the image back. */
export function resize(baseUrl: string, parts: UploadParts, request: RequestOptions = {}): Promise<Response> {
  return postForm(baseUrl, '/resize', parts, request)
}

function postForm(baseUrl: string, route: string, parts: UploadParts, request: RequestOptions): Promise<Response> {
  const form = new FormData()
  if (parts.image) form.append('image', new Blob([parts.image], {type: parts.type ?? 'application/octet-stream'}), parts.filename ?? 'upload.bin')
  if (parts.scale !== undefined) form.append('scale_factor', parts.scale)
  if (parts.format !== undefined) form.append('format', parts.format)
  for (const [name, value] of Object.entries(parts.fields ?? {})) form.append(name, value)
  return fetch(`${baseUrl}${route}${request.query === undefined ? '' : `?${request.query}`}`, {method: 'POST', body: form, headers: request.headers, signal: request.signal})
}

export interface StatusDoc {
  task_id: string
  status: string
  scale_factor: number | null
  options: Record<string, unknown>
  created_at: string
  started_at: string | null
  finished_at: string | null
  input: {format: string; width: number; height: number; bytes: number} | null
  output: {format: string; width: number; height: number; bytes: number} | null
  result_url: string | null
  image_url: string | null
  outputs: Array<{index: number; options: Record<string, unknown>; format: string | null; width: number | null; height: number | null; bytes: number | null; result_url: string | null}>
  error: {code: string; message: string} | null
  callback: {url: string; state: string; attempts: number; last_error: string | null} | null
}

/** Uploads, expects the 202, and returns the task id. */
export async function submit(baseUrl: string, parts: UploadParts): Promise<string> {
  const response = await upload(baseUrl, parts)
  const body = await response.json()
  expect(response.status, JSON.stringify(body)).to.equal(202)
  return (body as {task_id: string}).task_id
}

/** Polls the status until the task is done or failed (bounded: 300 polls). */
export async function waitForEnd(baseUrl: string, id: string): Promise<StatusDoc> {
  for (let i = 0; i < 300; i++) {
    const response = await fetch(`${baseUrl}/status/${id}`)
    expect(response.status).to.equal(200)
    const status = (await response.json()) as StatusDoc
    if (status.status === 'done' || status.status === 'failed' || status.status === 'cancelled') return status
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`task ${id} did not end`)
}

/** Asserts the contract's error shape and returns the code. */
export async function expectError(response: Response, status: number, code: string): Promise<{code: string; message: string}> {
  expect(response.headers.get('content-type')).to.equal('application/json; charset=utf-8')
  const body = (await response.json()) as {error: {code: string; message: string}}
  expect(response.status, JSON.stringify(body)).to.equal(status)
  expect(body.error.code).to.equal(code)
  expect(body.error.message).to.be.a('string').and.not.empty
  return body.error
}

/** The task's current status document. */
export async function statusOf(baseUrl: string, id: string): Promise<StatusDoc> {
  const response = await fetch(`${baseUrl}/status/${id}`)
  expect(response.status).to.equal(200)
  return (await response.json()) as StatusDoc
}

/** Waits until the task's callback is no longer pending (delivered or failed), and returns it. */
export async function callbackSettled(baseUrl: string, id: string, timeoutMs = 30_000): Promise<NonNullable<StatusDoc['callback']>> {
  return until(`the callback of ${id} to settle`, async () => {
    const {callback} = await statusOf(baseUrl, id)
    return callback && callback.state !== 'pending' ? callback : undefined
  }, timeoutMs)
}

/** One sample of GET /metrics (0 when the series has no sample yet). `labels` is the exact `{...}` text, if any. */
export async function metric(baseUrl: string, name: string, labels = ''): Promise<number> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text()
  const line = text.split('\n').find((row) => row.startsWith(`${name}${labels} `))
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0
}
