import {spawn} from 'node:child_process'

import {BIN} from './serve.js'

export interface CliRun {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs `imgscale <args>` to completion (stdin closed, like CI). */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return runProcess(BIN, args, env)
}

function runProcess(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {stdio: ['ignore', 'pipe', 'pipe'], env: {...process.env, IMGSCALE_URL: '', ...env}})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk) => (stdout += chunk))
    child.stderr.on('data', (chunk) => (stderr += chunk))
    child.once('error', reject)
    child.once('close', (code) => resolve({code, stdout, stderr}))
  })
}

/**
 * Runs `imgscale <args>` on a pseudo-terminal (util-linux `script`, which
 * Debian always has), as a user at a terminal would. stdout and stderr
 * arrive mixed, with the terminal's control codes, as the user sees them.
 */
export function runCliOnTerminal(args: string[]): Promise<CliRun> {
  const command = [BIN, ...args].map((word) => `'${word.replaceAll("'", `'\\''`)}'`).join(' ')
  return runProcess('script', ['-qfec', command, '/dev/null'], {COLUMNS: '120'})
}
