/** `GET /status/<id>` and `GET /result/<id>`. */
import type {Context} from 'koa'

import {FIXED} from '../config.js'
import {ImgscaleError} from '../errors.js'
import {EXTENSION, MIME_TYPE} from '../image/formats.js'
import type {Metrics} from '../metrics.js'
import type {TaskBackend} from '../tasks/backend.js'
import {isTaskId, statusBody, type Task} from '../tasks/task.js'
import {applyPreference, requestedWait} from './wait.js'


/**
 * `?wait=<seconds>` (or `Prefer: wait=<seconds>`) makes it a long poll: the
 * answer comes as soon as the task ends, or after that many seconds with the
 * status as it is then. Plain polling (no wait) answers at once.
 */
export function statusHandler(tasks: TaskBackend) {
  return async function status(ctx: Context): Promise<void> {
    const task = await findTask(tasks, ctx)
    const wait = requestedWait(ctx)
    ctx.body = statusBody(wait.seconds > 0 ? ((await tasks.waitForEnd(task.id, wait.seconds * 1000)) ?? task) : task)
    applyPreference(ctx, wait)
  }
}

export function resultHandler(tasks: TaskBackend, resultTtlMs: number, metrics: Metrics) {
  return async function result(ctx: Context): Promise<void> {
    const task = await findTask(tasks, ctx)
    if (task.status === 'failed') {
      const {code, message} = task.error!
      throw new ImgscaleError(code, message, {status: 422})
    }
    if (task.status === 'cancelled') {
      throw new ImgscaleError('cancelled', `Task ${task.id} was cancelled; it has no result.`)
    }
    if (task.status !== 'done') {
      throw new ImgscaleError('not_ready', `Task ${task.id} is ${task.status}; its result is not ready yet.`, {
        retryAfter: FIXED.retryAfterSeconds,
      })
    }

    const index = outputIndex(task, ctx)
    const output = task.outputs[index]!.result!
    // Opened before answering so a result swept a moment ago is a clean 404.
    const bytes = await tasks.openResult(task, index)
    if (!bytes) throw new ImgscaleError('not_found', `Task ${task.id} has expired.`)
    const expiresInMs = task.finishedAt!.getTime() + resultTtlMs - Date.now()
    ctx.status = 200
    ctx.type = MIME_TYPE[output.format]
    ctx.length = output.bytes
    // A task's results never change, so its id (and the output's index) is a strong validator.
    const name = index === 0 ? task.id : `${task.id}-${index}`
    ctx.etag = name
    ctx.set('Cache-Control', `private, max-age=${Math.max(0, Math.floor(expiresInMs / 1000))}, immutable`)
    ctx.set('Content-Disposition', `inline; filename="${name}.${EXTENSION[output.format]}"`)
    if (ctx.fresh) {
      if (!Buffer.isBuffer(bytes)) bytes.destroy()
      ctx.status = 304
      return
    }
    ctx.body = bytes
    metrics.resultSent(output.bytes)
  }
}

/** `DELETE /tasks/<id>`: cancels an unfinished task, forgets an ended one; 204 either way. */
export function deleteHandler(tasks: TaskBackend) {
  return async function remove(ctx: Context): Promise<void> {
    await tasks.delete(await findTask(tasks, ctx))
    ctx.status = 204
  }
}

/** `/result/<id>/<n>`: output n (contract section 10); `/result/<id>`: output 0. */
function outputIndex(task: Task, ctx: Context): number {
  const raw = ctx.params.index as string | undefined
  if (raw === undefined) return 0
  const index = /^\d{1,2}$/.test(raw) ? Number(raw) : -1
  if (index < 0 || index >= task.outputs.length) {
    const has = task.outputs.length === 1 ? 'one output, 0' : `outputs 0 to ${task.outputs.length - 1}`
    throw new ImgscaleError('not_found', `Task ${task.id} has ${has}; there is no output ${JSON.stringify(raw.slice(0, 20))}.`)
  }
  return index
}

/** Looks a task up by the id in the URL; ids are case-insensitive like all Crockford base32. */
async function findTask(tasks: TaskBackend, ctx: Context): Promise<Task> {
  const raw = ctx.params.id as string | undefined
  const id = (raw ?? '').toUpperCase()
  if (!isTaskId(id)) {
    throw new ImgscaleError('invalid_task_id', `${JSON.stringify((raw ?? '').slice(0, 64))} is not a task id (a 26-character ULID).`)
  }
  ctx.state['task'] = id
  const task = await tasks.get(id)
  if (!task) throw new ImgscaleError('not_found', `No task ${id}: it never existed or has expired.`)
  return task
}
