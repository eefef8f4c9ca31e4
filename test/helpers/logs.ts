/** Reading serve's JSON log lines (stderr) in tests. */
export type LogLine = Record<string, unknown>

export const logLines = (stderr: string): LogLine[] =>
  stderr
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine)

/** Pids of the workers that produced the results of `ids`, from the `task done` lines. */
export function workersThatServed(stderr: string, ids: readonly string[]): number[] {
  const wanted = new Set(ids)
  return logLines(stderr)
    .filter((line) => line['msg'] === 'task done' && wanted.has(line['task'] as string))
    .map((line) => line['worker'] as number)
}
