/**
 * The chaos soak (bench/soak.ts) in its short, fixed form: every fault of
 * the mode once, in order, under steady uploads with Idempotency-Keys. The
 * outcome asserted is the user's: every image a client tried ended `done`,
 * exactly once, with the planned size. The 30-minute runs are in
 * docs/reliability.md.
 */
import {spawn} from 'node:child_process'
import {fileURLToPath} from 'node:url'

import {expect} from 'chai'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))

function soak(args: string[]): Promise<{code: number | null; output: string}> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/soak.ts', '--each-fault-once', '--clients', '4', ...args], {cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe']})
    let output = ''
    child.stdout.on('data', (chunk) => (output += chunk))
    child.stderr.on('data', (chunk) => (output += chunk))
    child.once('error', reject)
    child.once('close', (code) => resolve({code, output}))
  })
}

describe('chaos soak, each fault once', function () {
  this.timeout(240_000)

  for (const [mode, args, faults] of [
    ['embedded', [], 4],
    ['distributed', ['--redis'], 5],
  ] as const) {
    it(`${mode}: every image tried ends done, exactly once, through every fault`, async () => {
      const {code, output} = await soak([...args])
      expect(output).to.match(/every image tried ended done, exactly once/)
      expect(code, output).to.equal(0)
      const injected = output.match(/^ {4} +1 {2}\S/gm) ?? []
      expect(injected, output).to.have.length(faults)
      const accepted = Number(/accepted +(\d+)/.exec(output)?.[1])
      expect(accepted, 'a steady load').to.be.greaterThan(50)
    })
  }
})
