import {copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {expect} from 'chai'

import {runCli, runCliOnTerminal} from '../helpers/cli.js'
import {PHOTO, sizeOf, truncatedJpeg} from '../helpers/images.js'
import {until} from '../helpers/processes.js'
import {Receiver} from '../helpers/receiver.js'
import {startServe, type Served} from '../helpers/serve.js'

const ULID = /^[0-7][0-9A-HJKMNP-TV-Z]{25}$/

describe('client commands against a real server', function () {
  let served: Served
  let dir: string
  let port: string
  before(async () => {
    served = await startServe(['-i', '::1', '--webhook-allow', '::1/128'])
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

  it('submit FILE SCALE -o FOLDER: still prints only the task id; saves into the folder under the input\'s name', async () => {
    const existing = await mkdtemp(path.join(dir, 'existing-'))
    const made = path.join(dir, 'made', 'here') + '/'
    for (const [out, expected] of [[existing, path.join(existing, 'Landscape_1.webp')], [made, path.join(made, 'Landscape_1.webp')]]) {
      const {code, stdout, stderr} = await runCli(['submit', PHOTO.jpeg.file, '0.5', '--format', 'webp', '-o', out!, ...url()])
      expect(code, stderr).to.equal(0)
      expect(stdout).to.match(/^[0-7][0-9A-HJKMNP-TV-Z]{25}\n$/)
      expect(await sizeOf(await readFile(expected!))).to.include({format: 'webp', width: 300, height: 225})
    }
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

  it('submit --width/--height/--fit/--position/--quality/--keep-metadata: every argument is a file, the box is exact', async () => {
    const out = path.join(dir, 'square.jpg')
    const args = ['submit', PHOTO.jpeg.file, '--width', '120', '--height', '120', '--fit', 'cover', '--position', 'attention', '--quality', '60', '--keep-metadata', '-o', out, ...url()]
    const {code, stdout, stderr} = await runCli(args)
    expect(code, stderr).to.equal(0)
    expect(await sizeOf(await readFile(out))).to.include({format: 'jpeg', width: 120, height: 120})
    const status = await runCli(['status', stdout.trim(), ...url()])
    expect(status.stdout).to.match(/resize\s+120x120 cover, position attention, quality 60, metadata kept/)
    const json = JSON.parse((await runCli(['status', stdout.trim(), '--json', ...url()])).stdout) as {options: object}
    expect(json.options).to.deep.equal({scale_factor: null, width: 120, height: 120, fit: 'cover', position: 'attention', quality: 60, format: null, metadata: 'keep', crop: null, rotate: 0, flip: false, flop: false, grayscale: false, blur: null, sharpen: null, background: null, preset: null})
    // One side only: the other follows; --format auto negotiates (the CLI names no Accept: the input format).
    const wide = path.join(dir, 'wide.jpg')
    expect((await runCli(['submit', PHOTO.jpeg.file, '--width', '150', '--format', 'auto', '-o', wide, ...url()])).code).to.equal(0)
    expect(await sizeOf(await readFile(wide))).to.include({format: 'jpeg', width: 150, height: 113})
  })

  it('submit refuses bad option values before uploading, in one sentence', async () => {
    for (const [flag, value] of [['--width', '0'], ['--quality', '101'], ['--fit', 'stretch'], ['--position', 'middle']]) {
      const {code, stderr} = await runCli(['submit', PHOTO.jpeg.file, flag!, value!, ...url()])
      expect(code, `${flag} ${value}`).to.equal(2)
      expect(stderr, `${flag} ${value}`).to.contain(flag!.slice(2))
    }
    // What only the server can judge comes back as its sentence.
    const png = await runCli(['submit', PHOTO.png.file, '0.5', '--quality', '50', ...url()])
    expect(png.code).to.equal(1)
    expect(png.stderr).to.match(/^imgscale: quality applies to JPEG, WebP, AVIF and TIFF output; this task's output is png/)
  })

  it('submit --callback: a forbidden one is one sentence; status shows a callback and how its delivery went; delete forgets', async () => {
    const {stdout, code, stderr} = await runCli(['submit', PHOTO.jpeg.file, '0.5', '--callback', 'http://127.0.0.1:9/hook', ...url()])
    expect(code, stderr).to.equal(1)
    expect(stderr).to.match(/^imgscale: callback_url leads to 127\.0\.0\.1, a loopback/)
    expect(stdout).to.equal('')
    const receiver = await Receiver.start('::1')
    let id: string
    try {
      id = (await runCli(['submit', PHOTO.jpeg.file, '0.5', '--wait', '--callback', receiver.url('/hook'), ...url()])).stdout.trim()
      await until('the callback', () => receiver.requestsTo('/hook').length === 1)
      await until('its state saved', async () => /delivered/.test((await runCli(['status', id, ...url()])).stdout))
      expect((await runCli(['status', id, ...url()])).stdout).to.match(/callback\s+http:\/\/\[::1\]:\d+\/hook delivered \(1 try\)/)
    } finally {
      await receiver.stop()
    }
    const removed = await runCli(['delete', id, ...url()])
    expect(removed.code, removed.stderr).to.equal(0)
    expect(removed.stdout).to.equal('')
    const gone = await runCli(['status', id, ...url()])
    expect(gone.code).to.equal(1)
    expect(gone.stderr).to.match(/^imgscale: No task .* it never existed or has expired\.\n$/)
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
      expectFailure(await runCli(['submit', '/dev/null', '0.5', ...url()]), /it is not a regular file/)
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

describe('submit in batch: many files, one folder of results', function () {
  let served: Served
  let dir: string
  let inputs: string
  before(async () => {
    served = await startServe()
    dir = await mkdtemp(path.join(os.tmpdir(), 'imgscale-batch-'))
    inputs = path.join(dir, 'in')
    await mkdir(path.join(inputs, 'more'), {recursive: true})
    await copyFile(PHOTO.jpeg.file, path.join(inputs, 'a.jpg'))
    await copyFile(PHOTO.png.file, path.join(inputs, 'b.png'))
    await copyFile(PHOTO.webp.file, path.join(inputs, 'c.webp'))
    await copyFile(PHOTO.jpegGrey.file, path.join(inputs, 'more', 'a.jpg'))
    await writeFile(path.join(inputs, 'notes.png'), 'not an image\n')
  })
  after(async () => {
    expect(await served.stop()).to.equal(0)
    await rm(dir, {recursive: true, force: true})
  })

  const url = (): string[] => ['--url', served.url]
  const lines = (stdout: string): string[][] => stdout.trim().split('\n').map((line) => line.split('\t'))

  it('several files, one of them bad: the others are saved, one line per file, exit 1 after all', async () => {
    const out = path.join(dir, 'out1') + '/'
    const files = ['a.jpg', 'b.png', 'notes.png', 'c.webp'].map((name) => path.join(inputs, name))
    const {code, stdout, stderr} = await runCli(['submit', ...files, '0.5', '--wait', '-o', out, ...url()])
    expect(code, stderr).to.equal(1)

    const byFile = new Map(lines(stdout).map((cells) => [cells[0], cells]))
    expect([...byFile.keys()]).to.have.members(files)
    for (const name of ['a.jpg', 'b.png', 'c.webp']) {
      const [, id, status, saved] = byFile.get(path.join(inputs, name))!
      expect(id).to.match(ULID)
      expect(status).to.equal('done')
      expect(saved).to.equal(path.join(out, name))
    }
    const [, badId, badStatus, reason] = byFile.get(path.join(inputs, 'notes.png'))!
    expect([badId, badStatus]).to.deep.equal(['-', 'failed'])
    expect(reason).to.contain('(unsupported_media_type)')

    expect((await readdir(out)).sort()).to.deep.equal(['a.jpg', 'b.png', 'c.webp'])
    expect(await sizeOf(await readFile(path.join(out, 'a.jpg')))).to.include({format: 'jpeg', width: 300, height: 225})
    expect(await sizeOf(await readFile(path.join(out, 'b.png')))).to.include({format: 'png', width: 288, height: 192})
    expect(await sizeOf(await readFile(path.join(out, 'c.webp')))).to.include({format: 'webp', width: 512, height: 386})
    // stderr is not a terminal here: plain progress lines, then the summary sentence.
    expect(stderr.trim().split('\n')).to.have.length(5)
    expect(stderr).to.match(/^imgscale: 4\/4 /m)
    const rates = [...stderr.matchAll(/\((\d+\.\d) files\/s, ETA \d+ s\)/g)].map((match) => Number(match[1]))
    expect(rates).to.have.length(4)
    expect(rates.every((rate) => rate > 0), stderr).to.equal(true)
    expect(stderr).to.contain('imgscale: 1 of 4 files failed.')
  })

  it('a directory stands for its images; same names get -2; --json prints one object per file; exit 0 when all are done', async () => {
    const out = path.join(dir, 'out2')
    const {code, stdout, stderr} = await runCli(
      ['submit', path.join(inputs, 'more'), path.join(inputs, 'a.jpg'), '0.5', '--format', 'webp', '-o', out + '/', '--json', '-c', '2', ...url()],
    )
    expect(code, stderr).to.equal(0)
    const objects = stdout.trim().split('\n').map((line) => JSON.parse(line) as {file: string; task_id: string; status: string; output: string; error: unknown})
    expect(objects.map((o) => o.file)).to.have.members([path.join(inputs, 'more', 'a.jpg'), path.join(inputs, 'a.jpg')])
    for (const object of objects) {
      expect(object.task_id).to.match(ULID)
      expect(object).to.include({status: 'done', error: null})
    }
    expect(objects.map((o) => o.output)).to.have.members([path.join(out, 'a.webp'), path.join(out, 'a-2.webp')])
    expect((await readdir(out)).sort()).to.deep.equal(['a-2.webp', 'a.webp'])
  })

  it('on a terminal: one progress bar on stderr (files, rate, ETA), the per-file lines printed above it', async () => {
    const out = path.join(dir, 'out-tty') + '/'
    const files = ['a.jpg', 'b.png', 'c.webp'].map((name) => path.join(inputs, name))
    // On a terminal stdout and stderr are one screen: `script` hands back both, as the user sees them.
    const started = Date.now()
    const {code, stdout: screen} = await runCliOnTerminal(['submit', ...files, '0.5', '--wait', '-o', out, ...url()])
    const seconds = (Date.now() - started) / 1000
    expect(code, screen).to.equal(0)
    const bar = / 3\/3 files \| (\d+\.\d) files\/s \| ETA \S+ \| 0 failed/.exec(screen)
    expect(bar, screen).to.not.equal(null)
    // Files per second: 3 files in at most the command's whole run time, so at least 3 / that.
    expect(Number(bar![1])).to.be.at.least(Math.floor((3 / seconds) * 10) / 10).and.above(0)
    for (const file of files) {
      expect(screen).to.contain(`${file}\t`)
      expect(screen).to.contain(`\tdone\t${path.join(out, path.basename(file))}`)
    }
    // The plain progress lines are for logs and pipes only.
    expect(screen).not.to.contain('imgscale: 1/3')
    expect((await readdir(out)).sort()).to.deep.equal(['a.jpg', 'b.png', 'c.webp'])
  })

  it('without --wait or -o: one line per file with its task id, nothing saved', async () => {
    const {code, stdout} = await runCli(['submit', path.join(inputs, 'a.jpg'), path.join(inputs, 'b.png'), '0.5', ...url()])
    expect(code).to.equal(0)
    for (const [, id, status] of lines(stdout)) {
      expect(id).to.match(ULID)
      expect(status).to.be.oneOf(['queued', 'processing'])
    }
  })

  it('refuses a call without a scale in one sentence, and a folder with no images', async () => {
    const noScale = await runCli(['submit', path.join(inputs, 'a.jpg'), ...url()])
    expect(noScale.code).to.equal(1)
    expect(noScale.stderr).to.equal('imgscale: Give one or more image files (or http(s) URLs), then the scale factor (`imgscale submit a.jpg 0.5`), or --width/--height, --output or --preset.\n')
    const empty = await mkdtemp(path.join(dir, 'empty-'))
    const none = await runCli(['submit', empty, '0.5', ...url()])
    expect(none.code).to.equal(1)
    expect(none.stderr).to.equal('imgscale: No image files to upload.\n')
  })
})
