/**
 * `POST /upload`: validate everything that is cheap to check, create the
 * task, answer 202. With `?wait=<s>` or `Prefer: wait=<s>` it holds the
 * answer up to that long and, if the task ends in time, answers 200 with the
 * final status document: one request instead of an upload and a long poll.
 */
import {rm} from 'node:fs/promises'

import type {Context} from 'koa'

import type {ServiceConfig} from '../config.js'
import {planResize} from '../image/plan.js'
import {probeImage} from '../image/probe.js'
import type {TaskBackend} from '../tasks/backend.js'
import type {AddressGuard} from '../webhooks/address-guard.js'
import {hasEnded, resultUrl, statusBody, statusUrl} from '../tasks/task.js'
import {applyPreference, requestedWait} from './wait.js'
import {parseUploadForm, type FormFields, type FormFiles, type UploadedFile} from './upload-form.js'

export function uploadHandler(config: ServiceConfig, tasks: TaskBackend, callbacks: AddressGuard) {
  return async function upload(ctx: Context): Promise<void> {
    const files = (ctx.request.files ?? {}) as FormFiles
    let keep: UploadedFile | undefined
    try {
      const wait = requestedWait(ctx)
      const form = parseUploadForm((ctx.request.body ?? {}) as FormFields, files, config.maxScale)
      const input = await probeImage(form.image.filepath, form.image.size)
      const plan = planResize(input, form.options, config, ctx.get('Accept'))
      if (form.callbackUrl !== null) await callbacks.check(form.callbackUrl)
      const task = await tasks.submit({options: form.options, input, plan, callbackUrl: form.callbackUrl, spooledPath: form.image.filepath})
      keep = form.image

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
      // Every spooled file that did not become a task's input is deleted, whatever went wrong.
      const spooled = Object.values(files).flat().filter((file): file is UploadedFile => file !== undefined && file !== keep)
      // allSettled: a failed delete must not replace the answer the client is owed.
      await Promise.allSettled(spooled.map((file) => rm(file.filepath, {force: true})))
    }
  }
}
