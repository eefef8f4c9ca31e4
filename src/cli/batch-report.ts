/**
 * How `submit` reports a batch: one line per file on stdout (tab-separated,
 * or JSON with --json), and progress on stderr: a bar on a terminal, a plain
 * line per file otherwise.
 */
import {SingleBar} from 'cli-progress'

import type {BatchItem} from '../client/batch.js'

export function itemLine(item: BatchItem, json: boolean): string {
  if (json) {
    return JSON.stringify({file: item.file, task_id: item.taskId, status: item.status, output: item.output, error: item.error})
  }
  const detail = item.error ? `${item.error.message}${item.error.code ? ` (${item.error.code})` : ''}` : (item.output ?? '')
  return [item.file, item.taskId ?? '-', item.status, detail].join('\t')
}

export interface Progress {
  /** Counts `item` and prints its line on stdout. */
  advance(item: BatchItem, line: string): void
  stop(): void
}

export function progressOn(stream: NodeJS.WriteStream, total: number): Progress {
  const started = Date.now()
  let done = 0
  let failed = 0
  const rate = (): number => done / Math.max(0.001, (Date.now() - started) / 1000)

  if (stream.isTTY) {
    const bar = new SingleBar({
      stream,
      format: '{bar} {value}/{total} files | {rate} files/s | ETA {eta_formatted} | {failed} failed',
      hideCursor: true,
      etaBuffer: 20,
    })
    bar.start(total, 0, {rate: '0.0', failed: 0})
    return {
      advance(item, line) {
        done++
        if (item.status === 'failed') failed++
        // Stdout may be the same terminal: clear the bar's line, print above it, redraw.
        stream.clearLine(0)
        stream.cursorTo(0)
        process.stdout.write(`${line}\n`)
        bar.update(done, {rate: rate().toFixed(1), failed})
        bar.render()
      },
      stop: () => bar.stop(),
    }
  }
  return {
    advance(item, line) {
      done++
      process.stdout.write(`${line}\n`)
      const eta = Math.round((total - done) / Math.max(rate(), 0.001))
      stream.write(`imgscale: ${done}/${total} ${item.file} ${item.status} (${rate().toFixed(1)} files/s, ETA ${eta} s)\n`)
    },
    stop() {},
  }
}
