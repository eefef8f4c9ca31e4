/**
 * The one error type of imgscale. Its `code` is the contract's snake_case code
 * and the HTTP status follows from the code (a failed task's error is the one
 * exception: `GET /result` sends it as 422 whatever its code).
 * `http/error-handler.ts` is the only place that turns it into a response.
 */
import {FIXED} from './config.js'

const STATUS = {
  invalid_request: 400,
  missing_image: 400,
  invalid_scale_factor: 400,
  invalid_format: 400,
  invalid_task_id: 400,
  invalid_option: 400,
  invalid_callback_url: 400,
  invalid_image_url: 400,
  invalid_source: 400,
  unauthorized: 401,
  invalid_signature: 403,
  not_found: 404,
  source_not_found: 404,
  method_not_allowed: 405,
  request_timeout: 408,
  not_ready: 409,
  idempotency_conflict: 409,
  cancelled: 410,
  payload_too_large: 413,
  unsupported_media_type: 415,
  image_too_large: 422,
  headers_too_large: 431,
  corrupt_image: 422,
  timeout: 422,
  worker_failed: 422,
  internal: 500,
  fetch_failed: 502,
  not_implemented: 501,
  insufficient_storage: 507,
  busy: 503,
  shutting_down: 503,
  unavailable: 503,
} as const

export type ErrorCode = keyof typeof STATUS

/** Every code an error response can carry. */
export const ERROR_CODES = Object.keys(STATUS) as ErrorCode[]

/** The codes a task can end `failed` with. */
export type TaskErrorCode = Extract<
  ErrorCode,
  'corrupt_image' | 'image_too_large' | 'unsupported_media_type' | 'timeout' | 'worker_failed' | 'insufficient_storage' | 'internal' | 'fetch_failed' | 'invalid_option' | 'payload_too_large'
>

export interface ErrorBody {
  code: ErrorCode
  message: string
}

export class ImgscaleError extends Error {
  override readonly name = 'ImgscaleError'
  readonly status: number
  /** Seconds the client should wait before trying again, sent as Retry-After. */
  readonly retryAfter?: number
  /** Response headers the answer needs (401's WWW-Authenticate). */
  readonly headers?: Record<string, string>

  constructor(
    readonly code: ErrorCode,
    message: string,
    options: {retryAfter?: number; status?: number; headers?: Record<string, string>; cause?: unknown} = {},
  ) {
    super(message, {cause: options.cause})
    this.status = options.status ?? STATUS[code]
    this.retryAfter = options.retryAfter
    this.headers = options.headers
  }

  toJSON(): ErrorBody {
    return {code: this.code, message: this.message}
  }
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(STATUS, value)
}

/** What a request that would start new work gets once `serve` is stopping. */
export const shuttingDown = (): ImgscaleError => new ImgscaleError('shutting_down', 'The server is shutting down; try again shortly.', {retryAfter: FIXED.retryAfterSeconds})

/** `serve` could not start (port in use, data directory locked, ...): its message is the one line the user sees. */
export class StartupError extends Error {
  override readonly name = 'StartupError'
}
