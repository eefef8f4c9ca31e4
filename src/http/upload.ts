/** `POST /upload`: validate everything that is cheap to check, create the task, answer 202. */
import {rm} from 'node:fs/promises'

import type {Context} from 'koa'

import type {ServiceConfig} from '../config.js'
import {planResize} from '../image/plan.js'
import {probeImage} from '../image/probe.js'
import type {TaskBackend} from '../tasks/backend.js'
import {resultUrl, statusUrl} from '../tasks/task.js'
import {parseUploadForm, type FormFields, type FormFiles, type UploadedFile} from './upload-form.js'

export function uploadHandler(config: ServiceConfig, tasks: TaskBackend) {
  return async function upload(ctx: Context): Promise<void> {
    const files = (ctx.request.files ?? {}) as FormFiles
    let keep: UploadedFile | undefined
    try {
      const form = parseUploadForm((ctx.request.body ?? {}) as FormFields, files, config.maxScale)
      const input = await probeImage(form.image.filepath, form.image.size)
      const plan = planResize(input, form.scale, form.format, config)
      const task = await tasks.submit({scaleFactor: form.scale, input, plan, spooledPath: form.image.filepath})
      keep = form.image

      ctx.state['task'] = task.id
      ctx.status = 202
      ctx.set('Location', statusUrl(task.id))
      ctx.body = {task_id: task.id, status: task.status, status_url: statusUrl(task.id), result_url: resultUrl(task.id)}
    } finally {
      // Every spooled file that did not become a task's input is deleted, whatever went wrong.
      const spooled = Object.values(files).flat().filter((file): file is UploadedFile => file !== undefined && file !== keep)
      // allSettled: a failed delete must not replace the answer the client is owed.
      await Promise.allSettled(spooled.map((file) => rm(file.filepath, {force: true})))
    }
  }
}
