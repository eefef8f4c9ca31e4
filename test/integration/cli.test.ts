import {mkdtemp, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {expect} from 'chai'

import {runCli} from '../helpers/cli.js'
import {PHOTO, sizeOf, truncatedJpeg} from '../helpers/images.js'
import {startServe, type Served} from '../helpers/serve.js'

const ULID = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/

describe('client commands against a real server', function () {
  let served: Served
  let dir: string
  let port: string
  before(async () => {
    served = await startServe(['-i', '::1'])
    port = new URL(served.url).port
    dir = await mkdtemp(path.join(os.tmpdir(), 'imgscale-cli-'))
  })
  after(async () => {
    expect(await served.stop()).to.equal(0)
    await rm(dir, {recursive: true, force: true})
  })

  const url = (): string[] => ['--url', served.url]

  it('submit prints only the task id, so id=$(imgscale submit ...) works', async () => {
    const {code, stdout, stderr} = await runCli(['submit', PHOTO.jpeg.file, '0.5', ...url()])
    expect(code, stderr).to.equal(0)
    expect(stdout).to.match(/^[0-7][0-9A-HJKMNP-TV-Z]{25}\n$/)
  })

  it('submit --wait -o saves the result; no progress noise when stderr is not a terminal', async () => {
    const out = path.join(dir, 'small.png')
    const {code, stdout, stderr} = await runCli(['submit', PHOTO.png.file, '0.25', '--wait', '-o', out, ...url()])
    expect(code, stderr).to.equal(0)
    expect(stdout.trim()).to.match(ULID)
    expect(stderr).to.equal('')
    expect(await sizeOf(await readFile(out))).to.include({format: 'png', width: 144, height: 96})
  })

  it('submit --format converts', async () => {
    const out = path.join(dir, 'converted.webp')
    const {code} = await runCli(['submit', PHOTO.jpeg.file, '0.5', '--format', 'webp', '-o', out, ...url()])
    expect(code).to.equal(0)
    expect(await sizeOf(await readFile(out))).to.include({format: 'webp', width: 300, height: 225})
  })

  it('status shows a readable summary, and --json the API document', async () => {
    const id = (await runCli(['submit', PHOTO.jpeg.file, '0.5', '--wait', ...url()])).stdout.trim()
    const readable = await runCli(['status', id, ...url()])
    expect(readable.code).to.equal(0)
    expect(readable.stdout).to.contain(`task ${id}`)
    expect(readable.stdout).to.match(/status\s+done/)
    expect(readable.stdout).to.match(/input\s+jpeg 600x450/)
    expect(readable.stdout).to.match(/output\s+jpeg 300x225/)
    const json = await runCli(['status', id, '--json', ...url()])
    expect(JSON.parse(json.stdout)).to.include({task_id: id, status: 'done', scale_factor: 0.5})
  })

  it('result -o downloads the image; without -o it saves <id>.<ext> here', async () => {
    const id = (await runCli(['submit', PHOTO.webp.file, '0.5', '--wait', ...url()])).stdout.trim()
    const out = path.join(dir, 'result.webp')
    const saved = await runCli(['result', id, '-o', out, ...url()])
    expect(saved.code).to.equal(0)
    expect(saved.stdout.trim()).to.equal(out)
    expect(await sizeOf(await readFile(out))).to.include({format: 'webp', width: 512, height: 386})

    const here = await runCliIn(dir, ['result', id, ...url()])
    expect(here.code).to.equal(0)
    expect(await sizeOf(await readFile(path.join(dir, `${id}.webp`)))).to.include({width: 512})
  })

  it('finds the server by -i/-p and by IMGSCALE_URL', async () => {
    const byFlags = await runCli(['submit', PHOTO.jpegGrey.file, '0.5', '-i', '::1', '-p', port])
    expect(byFlags.code, byFlags.stderr).to.equal(0)
    const byEnv = await runCli(['status', byFlags.stdout.trim()], {IMGSCALE_URL: served.url})
    expect(byEnv.code, byEnv.stderr).to.equal(0)
  })

  describe('errors: one sentence on stderr, non-zero exit, no stack trace', () => {
    const expectFailure = (run: {code: number | null; stderr: string; stdout: string}, sentence: RegExp): void => {
      expect(run.code).to.equal(1)
      expect(run.stderr).to.match(sentence)
      expect(run.stderr).not.to.match(/^\s+at /m)
      expect(run.stdout).to.equal('')
    }

    it('the server is unreachable', async () => {
      expectFailure(await runCli(['submit', PHOTO.jpeg.file, '0.5', '--url', 'http://127.0.0.1:9']), /Cannot reach the imgscale server at http:\/\/127\.0\.0\.1:9/)
      expectFailure(await runCli(['status', '01JD3Z6Q2W5N8R4T7Y9B1C3E5G', '--url', 'http://127.0.0.1:9']), /Cannot reach/)
    })

    it('the file is missing, or not a file', async () => {
      expectFailure(await runCli(['submit', path.join(dir, 'nope.jpg'), '0.5', ...url()]), /Cannot read .*nope\.jpg: no such file\./)
      expectFailure(await runCli(['submit', dir, '0.5', ...url()]), /it is not a regular file/)
    })

    it('the server refuses the upload (not an image, bad scale)', async () => {
      const text = path.join(dir, 'notes.txt')
      await writeFile(text, 'hello')
      expectFailure(await runCli(['submit', text, '0.5', ...url()]), /not an image we recognise/)
      expectFailure(await runCli(['submit', PHOTO.jpeg.file, 'big', ...url()]), /scale_factor must be a number/)
    })

    it('the id is unknown or malformed', async () => {
      expectFailure(await runCli(['status', '01JD3Z6Q2W5N8R4T7Y9B1C3E5G', ...url()]), /No task 01JD3Z6Q2W5N8R4T7Y9B1C3E5G/)
      expectFailure(await runCli(['result', 'not-an-id', '-o', path.join(dir, 'x'), ...url()]), /is not a task id/)
    })

    it('the task failed: submit --wait exits 1 with the reason; status prints it and exits 1', async () => {
      const broken = path.join(dir, 'broken.jpg')
      await writeFile(broken, truncatedJpeg())
      const submitted = await runCli(['submit', broken, '0.5', '--wait', ...url()])
      expect(submitted.code).to.equal(1)
      const id = submitted.stdout.trim()
      expect(id).to.match(ULID)
      expect(submitted.stderr).to.match(new RegExp(`Task ${id} failed: .*\\(corrupt_image\\)`))
      const status = await runCli(['status', id, ...url()])
      expect(status.code).to.equal(1)
      expect(status.stdout).to.match(/status\s+failed/)
      expect(status.stdout).to.contain('corrupt_image')
      expectFailure(await runCli(['result', id, '-o', path.join(dir, 'x.jpg'), ...url()]), /could not be decoded/)
    })

    it('the output folder does not exist', async () => {
      const id = (await runCli(['submit', PHOTO.jpeg.file, '0.5', '--wait', ...url()])).stdout.trim()
      expectFailure(await runCli(['result', id, '-o', path.join(dir, 'missing', 'x.jpg'), ...url()]), /Cannot write .*: its folder does not exist\./)
    })
  })
})

function runCliIn(cwd: string, args: string[]): ReturnType<typeof runCli> {
  const original = process.cwd()
  process.chdir(cwd)
  try {
    return runCli(args)
  } finally {
    process.chdir(original)
  }
}
