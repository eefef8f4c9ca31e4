/**
 * `POST /upload`: validate everything that is cheap to check, create the
 * task, answer 202. With `?wait=<s>` or `Prefer: wait=<s>` it holds the
 * answer up to that long and, if the task ends in time, answers 200 with the
 * final status document: one request instead of an upload and a long poll.
 * With an `Idempotency-Key` it makes its task at most once
 * (tasks/idempotency.ts). The checks before any work are shared with
 * `POST /resize`.
 */
import {rm} from 'node:fs/promises'

import type {Context, Next} from 'koa'

import type {ServiceConfig} from '../config.js'
import {inspectImage} from '../image/inspect.js'
import {acceptedFormats, type AcceptedFormats, type ResizePlan} from '../image/plan.js'
import type {ImageInfo} from '../image/probe.js'
import type {Metrics} from '../metrics.js'
import {digestUpload} from '../storage/upload-bytes.js'
import type {TaskBackend} from '../tasks/backend.js'
import {idempotencyKeyOf, sha256, submitOnce, type Idempotency} from '../tasks/idempotency.js'
import {hasEnded, resultUrl, statusBody, statusUrl} from '../tasks/task.js'
import type {AddressGuard} from '../net/address-guard.js'
import {parseUploadForm, type FormFields, type FormFiles, type FormRules, type UploadedFile, type UploadForm} from './upload-form.js'
import {applyPreference, requestedWait} from './wait.js'

export interface CheckedUpload {
  form: UploadForm
  /** What `format=auto` may choose: the request's Accept header. */
  accepted: AcceptedFormats
  /** null for an image_url: known once it is fetched. */
  input: ImageInfo | null
  plans: ResizePlan[] | null
}

/**
 * Everything checked before any work, for /upload and /resize alike: the
 * form, and for an uploaded image its type, its header and the plan of
 * every output.
 */
export async function checkUpload(ctx: Context, config: ServiceConfig, rules: FormRules): Promise<CheckedUpload> {
  const form = parseUploadForm((ctx.request.body ?? {}) as FormFields, (ctx.request.files ?? {}) as FormFiles, rules)
  const accepted = acceptedFormats(ctx.get('Accept'))
  if (!form.image) return {form, accepted, input: null, plans: null}
  return {form, accepted, ...(await inspectImage(form.image, form.outputs, config, accepted))}
}

/** Deletes every file of the request spooled to disk, but `keep` (a task's input by now), whatever went wrong. */
export async function discardSpooled(ctx: Context, keep: UploadedFile | null = null): Promise<void> {
  const files = Object.values((ctx.request.files ?? {}) as FormFiles).flat()
  const spooled = files.filter((file): file is UploadedFile => file !== undefined && file !== keep && file.data === undefined)
  // allSettled: a failed delete must not replace the answer the client is owed.
  await Promise.allSettled(spooled.map((file) => rm(file.filepath, {force: true})))
}

/** A malformed `Idempotency-Key` is refused before the upload is read; a good one is kept, scoped by the API key, for the handler. */
export async function readIdempotencyKey(ctx: Context, next: Next): Promise<void> {
  // Node joins a repeated header with ", ", which no valid key contains.
  const header = ctx.headers['idempotency-key'] as string | undefined
  ctx.state['idempotencyKey'] = idempotencyKeyOf(header, (ctx.state['client'] as string | undefined) ?? '')
  await next()
}

/** What `POST /upload` needs besides the task backend. */
export interface UploadDeps {
  config: ServiceConfig
  rules: FormRules
  /** Where callbacks, and image_url fetches, may go. */
  guards: {callbacks: AddressGuard; fetches: AddressGuard}
  metrics: Metrics
}

export function uploadHandler(tasks: TaskBackend, {config, rules, guards, metrics}: UploadDeps) {
  return async function upload(ctx: Context): Promise<void> {
    let keep: UploadedFile | null = null
    try {
      const wait = requestedWait(ctx)
      const {form, accepted, input, plans} = await checkUpload(ctx, config, rules)
      if (form.imageUrl !== null) await guards.fetches.check(form.imageUrl)
      if (form.callbackUrl !== null) await guards.callbacks.check(form.callbackUrl)
      const key = ctx.state['idempotencyKey'] as string | undefined
      const params = {
        outputs: form.outputs.map((options, i) => ({options, plan: plans?.[i] ?? null})),
        input,
        imageUrl: form.imageUrl,
        accepted,
        callbackUrl: form.callbackUrl,
        upload: form.image,
      }
      const {task, replayed} = key
        ? await submitOnce(tasks, {...params, idempotency: {key, fingerprint: await fingerprint(form)}})
        : {task: await tasks.submit(params), replayed: false}
      if (replayed) {
        // It made no task: the spooled copy of its image goes with the request.
        ctx.set('Idempotent-Replayed', 'true')
        metrics.uploadReplayed()
      } else {
        keep = form.image
      }

      ctx.state['task'] = task.id
      ctx.set('Location', statusUrl(task.id))
      const ended = wait.seconds > 0 ? await tasks.waitForEnd(task.id, wait.seconds * 1000) : undefined
      applyPreference(ctx, wait)
      if (ended && hasEnded(ended)) {
        ctx.status = 200
        ctx.set('Content-Location', statusUrl(task.id))
        ctx.body = statusBody(ended)
        return
      }
      ctx.status = 202
      ctx.body = {task_id: task.id, status: ended?.status ?? task.status, status_url: statusUrl(task.id), result_url: resultUrl(task.id)}
    } finally {
      await discardSpooled(ctx, keep)
    }
  }
}

/** What the request asks for, so that a retry can be told from another request under the same key. */
export async function fingerprint(form: UploadForm): Promise<Idempotency['fingerprint']> {
  const image = form.image ? await digestUpload(form.image) : `url ${form.imageUrl}`
  return sha256(image, '\n', JSON.stringify(form.outputs), '\n', form.callbackUrl ?? '')
}
