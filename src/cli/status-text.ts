/** The readable form of a task's status, for `imgscale status`. */
import type {OptionsBody} from '../image/options.js'
import type {ImageSummary, OutputBody, StatusBody} from '../tasks/task.js'

export function formatStatus(status: StatusBody, baseUrl: string): string {
  const rows: Array<[string, string]> = [
    ['status', status.status],
    ['resize', describeOptions(status.options)],
    ['input', status.input ? describeImage(status.input) : `to be fetched from ${status.image_url}`],
  ]
  if (status.outputs.length > 1) {
    for (const output of status.outputs) rows.push([`output ${output.index}`, describeOutput(output)])
  } else if (status.output) {
    rows.push(['output', describeImage(status.output)])
  }
  rows.push(['created', status.created_at])
  if (status.started_at) rows.push(['started', status.started_at])
  if (status.finished_at) rows.push(['finished', `${status.finished_at} (${elapsed(status)})`])
  if (status.result_url) rows.push(['result', new URL(status.result_url, baseUrl).href])
  if (status.error) rows.push(['error', `${status.error.message} (${status.error.code})`])
  if (status.callback) rows.push(['callback', describeCallback(status.callback)])
  return [`task ${status.task_id}`, ...rows.map(([key, value]) => `  ${key.padEnd(9)}${value}`)].join('\n')
}

export function describeImage(image: ImageSummary): string {
  return `${image.format} ${image.width}x${image.height}, ${formatBytes(image.bytes)}`
}

/** One of several outputs: its options, and what it is (or will be). */
function describeOutput(output: OutputBody): string {
  const made = output.bytes !== null ? describeImage(output as ImageSummary) : output.format ? `${output.format} ${output.width}x${output.height}` : 'size known once fetched'
  return `${describeOptions(output.options)} -> ${made}`
}

/** `scale 0.5`, or `800x600 cover (attention)`, then what differs from the defaults. */
export function describeOptions(options: OptionsBody): string {
  const size = options.scale_factor !== null ? `scale ${options.scale_factor}` : `${options.width ?? 'auto'}x${options.height ?? 'auto'} ${options.fit}`
  const extras = [
    options.position !== 'centre' ? `position ${options.position}` : '',
    options.quality !== null ? `quality ${options.quality}` : '',
    options.format !== null ? `format ${options.format}` : '',
    options.metadata === 'keep' ? 'metadata kept' : '',
    options.crop ? `crop ${options.crop.x},${options.crop.y},${options.crop.width},${options.crop.height}` : '',
    options.rotate !== 0 ? `rotate ${options.rotate}` : '',
    options.flip ? 'flip' : '',
    options.flop ? 'flop' : '',
    options.grayscale ? 'grayscale' : '',
    options.blur !== null ? `blur ${options.blur}` : '',
    options.sharpen !== null ? `sharpen ${options.sharpen}` : '',
    options.background !== null ? `background ${options.background}` : '',
    options.preset !== null ? `preset ${options.preset}` : '',
  ].filter(Boolean)
  return [size, ...extras].join(', ')
}

function describeCallback(callback: NonNullable<StatusBody['callback']>): string {
  const tries = `${callback.attempts} ${callback.attempts === 1 ? 'try' : 'tries'}`
  const error = callback.last_error ? `, last: ${callback.last_error}` : ''
  return `${callback.url} ${callback.state} (${tries}${error})`
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`
}

function elapsed(status: StatusBody): string {
  const ms = Date.parse(status.finished_at!) - Date.parse(status.started_at ?? status.created_at)
  return `took ${(ms / 1000).toFixed(2)} s`
}
