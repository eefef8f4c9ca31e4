/** What every call of the client library (and so every client command) fails with. */
import type {ErrorCode} from '../errors.js'

/**
 * `code` is the contract's error code when the server sent one
 * (`err.code === 'busy'`), `unreachable` when no answer came (refused,
 * reset, timed out, a name that does not resolve), `task_failed` when a
 * task the caller waited for did not end done, or `client` for a local
 * problem (a file that cannot be read or written).
 */
export type ClientErrorCode = ErrorCode | 'unreachable' | 'task_failed' | 'client'

export class ImgscaleClientError extends Error {
  override readonly name = 'ImgscaleClientError'
  /** The HTTP status, when the server answered. */
  readonly status: number | undefined
  /** Set when the same request may be sent again: the connection was lost or refused, or the server said when to retry (Retry-After, in ms). */
  readonly retryAfterMs: number | undefined

  constructor(
    /** One sentence, fit for a user. */
    message: string,
    readonly code: ClientErrorCode,
    options: {status?: number; retryAfterMs?: number; cause?: unknown} = {},
  ) {
    super(message, {cause: options.cause})
    this.status = options.status
    this.retryAfterMs = options.retryAfterMs
  }
}
