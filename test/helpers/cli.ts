import {spawn} from 'node:child_process'

import {BIN} from './serve.js'

export interface CliRun {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs `imgscale <args>` to completion (stdin closed, like CI). */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(BIN, args, {stdio: ['ignore', 'pipe', 'pipe'], env: {...process.env, IMGSCALE_URL: '', ...env}})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk) => (stdout += chunk))
    child.stderr.on('data', (chunk) => (stderr += chunk))
    child.once('error', reject)
    child.once('close', (code) => resolve({code, stdout, stderr}))
  })
}
