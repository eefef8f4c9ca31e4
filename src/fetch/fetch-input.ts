/**
 * The first step of an `image_url` task (contract section 10): the image is
 * fetched, judged by its bytes like an upload, and only then are its outputs
 * planned, so a fetched image meets every check an uploaded one does before
 * a worker sees it. Any process that runs tasks does this: `serve`'s
 * dispatcher, or a worker host, behind its own guard.
 */
import {ImgscaleError} from '../errors.js'
import {inspectImage} from '../image/inspect.js'
import type {PixelLimits} from '../image/plan.js'
import {markFetched, type Task} from '../tasks/task.js'
import type {ImageFetcher} from './image-fetcher.js'

/** Fetches and plans the task's image; throws the error the task fails with. */
export async function fetchInput(task: Task, fetcher: ImageFetcher, limits: PixelLimits): Promise<Buffer> {
  let bytes: Buffer
  try {
    bytes = await fetcher.fetch(task.imageUrl!)
  } catch (error) {
    // For a task, an image over the limit is one more reason the fetch failed (contract section 10).
    if (error instanceof ImgscaleError && error.code === 'payload_too_large') throw new ImgscaleError('fetch_failed', error.message)
    throw error
  }
  const {input, plans} = await inspectImage(
    bytes,
    task.outputs.map((output) => output.options),
    limits,
    task.accepted,
  )
  markFetched(task, input, plans)
  return bytes
}
