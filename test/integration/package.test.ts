/**
 * The package as a user gets it (issue 22): `npm pack`, installed into a
 * fresh project, where a TypeScript program imports `imgscale`, is
 * type-checked against the installed types (`tsc --noEmit`), and runs
 * against a real serve: submit, wait, result, a typed `busy`, and
 * `verifyCallback` taking a real callback and refusing a tampered one.
 */
import {execFile} from 'node:child_process'
import {mkdtempSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {promisify} from 'node:util'

import {expect} from 'chai'

import {submit} from '../helpers/api.js'
import {PHOTO, SLOW} from '../helpers/images.js'
import {until} from '../helpers/processes.js'
import {Receiver} from '../helpers/receiver.js'
import {startServe, type Served} from '../helpers/serve.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
const run = promisify(execFile)
const SECRET = 'package-test-secret'

/** What the user's program does; its output is one JSON line per step. */
const PROGRAM = `
import {readFileSync} from 'node:fs'

import {CallbackVerificationError, Imgscale, ImgscaleClientError, verifyCallback, type StatusBody} from 'imgscale'

const {URL_OK, URL_BUSY, PHOTO_FILE, CALLBACK_FILE, SECRET} = process.env as Record<string, string>
const say = (step: string, value: unknown): void => console.log(JSON.stringify({step, value}))

const imgscale = new Imgscale({url: URL_OK})
const {taskId} = await imgscale.submit(PHOTO_FILE, {scale: 0.5, format: 'webp'})
const status: StatusBody = await imgscale.wait(taskId)
const image: Buffer = await imgscale.result(taskId)
say('done', {status: status.status, output: status.output, bytes: image.length})

const fromBytes = await imgscale.submit(readFileSync(PHOTO_FILE), {width: 40, wait: 10})
say('bytes', fromBytes.final?.output ?? null)

try {
  await new Imgscale({url: URL_BUSY, tries: 1}).submit(PHOTO_FILE, {scale: 0.5})
  say('busy', 'accepted')
} catch (error) {
  if (error instanceof ImgscaleClientError) say('busy', {code: error.code, status: error.status, retryAfterMs: error.retryAfterMs})
  else throw error
}

const callback = JSON.parse(readFileSync(CALLBACK_FILE, 'utf8')) as {headers: Record<string, string>; body: string}
say('verified', verifyCallback(SECRET, callback.headers, callback.body).task_id)
try {
  verifyCallback(SECRET, callback.headers, callback.body.replace('"done"', '"failed"'))
  say('tampered', 'accepted')
} catch (error) {
  say('tampered', error instanceof CallbackVerificationError ? error.reason : String(error))
}
`

describe('the packed package, installed and used from TypeScript (issue 22)', function () {
  this.timeout(240_000)
  const project = mkdtempSync(path.join(os.tmpdir(), 'imgscale-package-'))
  let ok: Served
  let busy: Served
  let receiver: Receiver
  before(async () => {
    receiver = await Receiver.start()
    ok = await startServe(['-w', '1', '--webhook-allow', '127.0.0.1/32', '--webhook-secret', SECRET])
    busy = await startServe(['-w', '1', '--inflight-per-worker', '1', '--max-queue', '0'])
  })
  after(async () => {
    await ok?.stop()
    await busy?.stop()
    await receiver?.stop()
    rmSync(project, {recursive: true, force: true})
  })

  it('packs, installs, type-checks against its own types, and works against a real serve', async () => {
    // The build `npm test` made; scripts off, so packing does not rebuild dist/ under the other tests' feet.
    await run('npm', ['pack', '--ignore-scripts', '--pack-destination', project], {cwd: ROOT})
    const tarball = readdirSync(project).find((name) => name.endsWith('.tgz'))!
    writeFileSync(path.join(project, 'package.json'), JSON.stringify({name: 'user-project', private: true, type: 'module'}))
    // The library needs none of the server's native modules: their install scripts stay off, and npm's cache serves the rest.
    await run('npm', ['install', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund', path.join(project, tarball)], {cwd: project})
    writeFileSync(path.join(project, 'app.ts'), PROGRAM)
    writeFileSync(
      path.join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {target: 'es2022', module: 'nodenext', moduleResolution: 'nodenext', strict: true, outDir: 'out', types: ['node'], typeRoots: [path.join(ROOT, 'node_modules', '@types')], skipLibCheck: false},
        files: ['app.ts'],
      }),
    )
    await run(process.execPath, [TSC, '--noEmit', '-p', project]).catch((error: {stdout?: string}) => {
      throw new Error(`tsc --noEmit failed:\n${error.stdout ?? String(error)}`)
    })
    await run(process.execPath, [TSC, '-p', project])

    // A real callback, captured as a receiver gets it.
    const callbackTask = await submit(ok.url, {image: (await import('node:fs')).readFileSync(PHOTO.jpeg.file), scale: '0.1', fields: {callback_url: receiver.url('/hook')}})
    await until('the callback', () => receiver.received.some((request) => request.body.includes(callbackTask)), 30_000)
    const delivered = receiver.received.find((request) => request.body.includes(callbackTask))!
    const callbackFile = path.join(project, 'callback.json')
    writeFileSync(callbackFile, JSON.stringify({headers: delivered.headers, body: delivered.body}))
    // The busy server's one slot taken by a slow task, and its queue (0) full.
    await submit(busy.url, SLOW)

    const {stdout} = await run(process.execPath, [path.join(project, 'out', 'app.js')], {
      cwd: project,
      env: {...process.env, URL_OK: ok.url, URL_BUSY: busy.url, PHOTO_FILE: PHOTO.jpeg.file, CALLBACK_FILE: callbackFile, SECRET},
    })
    const steps = Object.fromEntries(stdout.trim().split('\n').map((line) => JSON.parse(line) as {step: string; value: unknown}).map(({step, value}) => [step, value]))
    expect(steps['done']).to.deep.include({status: 'done', output: {format: 'webp', width: 300, height: 225, bytes: (steps['done'] as {bytes: number}).bytes}})
    expect(steps['bytes']).to.include({width: 40, height: 30})
    expect(steps['busy']).to.deep.equal({code: 'busy', status: 503, retryAfterMs: 1000})
    expect(steps['verified']).to.equal(callbackTask)
    expect(steps['tampered']).to.equal('bad_signature')
  })
})
