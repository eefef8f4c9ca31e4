/**
 * Many files in one go, with a bounded number in flight, reporting every
 * file, the failed ones included, without stopping at the first failure:
 * as tasks (upload, wait, save each result into one folder), or through
 * `/resize` (each image back at once, into the folder).
 */
import {mkdir, readdir, stat} from 'node:fs/promises'
import path from 'node:path'

import type {ErrorBody} from '../errors.js'
import {EXTENSION} from '../image/formats.js'
import type {StatusBody, TaskStatus} from '../tasks/task.js'
import {ImgscaleClientError} from './client-error.js'
import {SHORT_WAIT_SECONDS, type Imgscale, type ResizeRequest} from './imgscale.js'

export interface BatchOptions {
  resize: ResizeRequest
  /** Wait for each task to end (implied by outDir). */
  wait: boolean
  /** Save the results here. */
  outDir?: string
  concurrency: number
  timeoutMs: number
}

export interface BatchItem {
  file: string
  taskId: string | null
  status: TaskStatus
  /** Where the result was saved. */
  output: string | null
  error: (Pick<ErrorBody, 'message'> & {code: string | null}) | null
}

/** File names a directory argument stands for: its images, not recursive, sorted. */
const IMAGE_FILE = /\.(jpe?g|png|webp|avif|gif|tiff?)$/i

/** Replaces each directory among `inputs` by the image files in it. */
export async function expandInputs(inputs: string[]): Promise<string[]> {
  const files: string[] = []
  for (const input of inputs) {
    const info = await stat(input).catch(() => undefined)
    if (info?.isDirectory()) {
      const names = (await readdir(input)).filter((name) => IMAGE_FILE.test(name)).sort()
      files.push(...names.map((name) => path.join(input, name)))
    } else {
      files.push(input) // A missing file is reported with the others, as that file's failure.
    }
  }
  return files
}

export async function runBatch(
  client: Imgscale,
  files: string[],
  options: BatchOptions,
  onItem: (item: BatchItem) => void,
): Promise<BatchItem[]> {
  if (options.outDir) await mkdir(options.outDir, {recursive: true})
  const names = new OutputNames()
  return inLanes(files, options.concurrency, (file) => processFile(client, file, options, names), onItem)
}

/** `imgscale resize` of many files: each through `POST /resize`, saved into `outDir`. */
export async function runResizeBatch(
  client: Imgscale,
  files: string[],
  options: Pick<BatchOptions, 'resize' | 'concurrency'> & {outDir: string},
  onItem: (item: BatchItem) => void,
): Promise<BatchItem[]> {
  await mkdir(options.outDir, {recursive: true})
  const names = new OutputNames()
  return inLanes(files, options.concurrency, (file) => resizeFile(client, file, options, names), onItem)
}

/** Runs `work` on every file, `concurrency` at once, in order of the list; the items come back in that order. */
async function inLanes(files: string[], concurrency: number, work: (file: string) => Promise<BatchItem>, onItem: (item: BatchItem) => void): Promise<BatchItem[]> {
  const items: BatchItem[] = new Array(files.length)
  let next = 0
  const lane = async (): Promise<void> => {
    while (next < files.length) {
      const index = next++
      items[index] = await work(files[index]!)
      onItem(items[index]!)
    }
  }
  await Promise.all(Array.from({length: Math.min(concurrency, files.length)}, lane))
  return items
}

async function resizeFile(client: Imgscale, file: string, options: {resize: ResizeRequest; outDir: string}, names: OutputNames): Promise<BatchItem> {
  try {
    const output = await client.resizeTo(file, options.resize, (extension) => names.claim(options.outDir, file, extension ?? 'bin'))
    return {file, taskId: null, status: 'done', output, error: null}
  } catch (error) {
    if (!(error instanceof ImgscaleClientError)) throw error
    return {file, taskId: null, status: 'failed', output: null, error: {code: error.code, message: error.message}}
  }
}

async function processFile(client: Imgscale, file: string, options: BatchOptions, names: OutputNames): Promise<BatchItem> {
  const item: BatchItem = {file, taskId: null, status: 'failed', output: null, error: null}
  try {
    const waiting = options.wait || Boolean(options.outDir)
    const uploaded = await client.submit(file, {...options.resize, ...(waiting ? {wait: SHORT_WAIT_SECONDS} : {})})
    item.taskId = uploaded.taskId
    item.status = uploaded.status
    if (!waiting) return item

    const final = uploaded.final ?? (await client.wait(uploaded.taskId, {timeoutMs: options.timeoutMs}))
    item.status = final.status
    if (final.status !== 'done') {
      item.error = {code: final.error!.code, message: final.error!.message}
      return item
    }
    if (options.outDir) item.output = (await saveOutputs(client, final, options.outDir, file, names)).join(', ')
  } catch (error) {
    if (!(error instanceof ImgscaleClientError)) throw error
    item.status = 'failed'
    item.error = {code: error.code ?? null, message: error.message}
  }
  return item
}

/**
 * Saves every output of a done task into `outDir`, under the input's name:
 * one output as `<stem>.<ext>`, several as `<stem>-<n>.<ext>`, n being the
 * output's index (its `/result/<id>/<n>`). Returns where they went.
 */
export async function saveOutputs(client: Imgscale, final: StatusBody, outDir: string, file: string, names = new OutputNames()): Promise<string[]> {
  if (final.outputs.length <= 1) return [await client.saveResult(final.task_id, names.claim(outDir, file, EXTENSION[final.output!.format]))]
  const stem = path.basename(file).replace(/\.[^.]*$/, '') || 'image'
  const saved: string[] = []
  for (const output of final.outputs) {
    saved.push(await client.saveResult(final.task_id, names.claim(outDir, `${stem}-${output.index}`, EXTENSION[output.format!]), output.index))
  }
  return saved
}

/** `-o` names a folder when it ends with a slash or is an existing directory. */
export async function isFolder(output: string | undefined): Promise<boolean> {
  if (!output) return false
  if (output.endsWith('/')) return true
  return (await stat(output).catch(() => undefined))?.isDirectory() ?? false
}

/** `a.jpg` and `other/a.jpg` both want `out/a.jpg`: the second gets `out/a-2.jpg`. */
export class OutputNames {
  private readonly taken = new Set<string>()

  claim(outDir: string, file: string, extension: string): string {
    for (let n = 1; ; n++) {
      const candidate = resultPathIn(outDir, file, extension, n)
      if (!this.taken.has(candidate)) {
        this.taken.add(candidate)
        return candidate
      }
    }
  }
}

/** Where the result of `file` goes in the folder `outDir`: its name, the result's extension, and `-n` from the second on. */
export function resultPathIn(outDir: string, file: string, extension: string, n = 1): string {
  const stem = path.basename(file).replace(/\.[^.]*$/, '') || 'image'
  return path.join(outDir, `${stem}${n === 1 ? '' : `-${n}`}.${extension}`)
}
