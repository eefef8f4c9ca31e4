/** `imgscale resize` (contract section 9): files in, files out, through POST /resize, as a user runs it. */
import {spawn} from 'node:child_process'
import {copyFile, mkdtemp, readdir, readFile, rm, writeFile} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {expect} from 'chai'

import {runCli} from '../helpers/cli.js'
import {PHOTO, sizeOf, truncatedJpeg} from '../helpers/images.js'
import {BIN, startServe, type Served} from '../helpers/serve.js'

describe('imgscale resize against a real server', function () {
  let served: Served
  let dir: string
  before(async () => {
    served = await startServe()
    dir = await mkdtemp(path.join(os.tmpdir(), 'imgscale-cli-resize-'))
  })
  after(async () => {
    expect(await served.stop()).to.equal(0)
    await rm(dir, {recursive: true, force: true})
  })

  const url = (): string[] => ['--url', served.url]

  it('FILE SCALE -o OUT: saves the image and prints where; the server keeps no task', async () => {
    const out = path.join(dir, 'small.jpg')
    const {code, stdout, stderr} = await runCli(['resize', PHOTO.jpeg.file, '0.5', '-o', out, ...url()])
    expect(code, stderr).to.equal(0)
    expect(stdout).to.equal(`${out}\n`)
    expect(stderr).to.equal('')
    expect(await sizeOf(await readFile(out))).to.include({format: 'jpeg', width: 300, height: 225})
  })

  it('takes submit\'s options, and -o FOLDER/ names the file after the input with the output\'s extension', async () => {
    const folder = path.join(dir, 'thumbs') + '/'
    const {code, stdout, stderr} = await runCli(['resize', PHOTO.png.file, '--width', '100', '--height', '100', '--fit', 'cover', '--format', 'webp', '--quality', '50', '-o', folder, ...url()])
    expect(code, stderr).to.equal(0)
    const expected = path.join(folder, 'embedgravitybird.webp')
    expect(stdout).to.equal(`${expected}\n`)
    expect(await sizeOf(await readFile(expected))).to.include({format: 'webp', width: 100, height: 100})
  })

  it('-o - writes the image to stdout', async () => {
    const bytes = await new Promise<Buffer>((resolve, reject) => {
      const child = spawn(BIN, ['resize', PHOTO.jpeg.file, '0.1', '-o', '-', ...url()], {stdio: ['ignore', 'pipe', 'inherit']})
      const chunks: Buffer[] = []
      child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk))
      child.once('error', reject)
      child.once('close', (code) => (code === 0 ? resolve(Buffer.concat(chunks)) : reject(new Error(`exit ${code}`))))
    })
    expect(await sizeOf(bytes)).to.include({format: 'jpeg', width: 60, height: 45})
  })

  it('an image the server cannot decode: exit 1 with the server\'s sentence, and no file written', async () => {
    const broken = path.join(dir, 'broken.jpg')
    await writeFile(broken, truncatedJpeg())
    const out = path.join(dir, 'never.jpg')
    const {code, stdout, stderr} = await runCli(['resize', broken, '0.5', '-o', out, ...url()])
    expect(code).to.equal(1)
    expect(stdout).to.equal('')
    expect(stderr).to.match(/^imgscale: The image could not be decoded: .+\.\n$/)
    expect(await readdir(dir)).not.to.include('never.jpg')
  })

  it('a batch: every file into the folder, one line each, failures reported and counted', async () => {
    const inputs = await mkdtemp(path.join(dir, 'in-'))
    await copyFile(PHOTO.jpeg.file, path.join(inputs, 'a.jpg'))
    await copyFile(PHOTO.png.file, path.join(inputs, 'b.png'))
    await writeFile(path.join(inputs, 'c.jpg'), truncatedJpeg())
    const out = path.join(dir, 'batch-out')
    const {code, stdout, stderr} = await runCli(['resize', inputs, '0.5', '-o', out, '--json', ...url()])
    expect(code).to.equal(1)
    expect(stderr).to.contain('imgscale: 1 of 3 files failed.')
    // One line per file as each one ends, in whatever order they end.
    const items = stdout
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as {file: string; status: string; output: string | null; error: {code: string} | null})
      .sort((x, y) => x.file.localeCompare(y.file))
    expect(items.map((item) => [path.basename(item.file), item.status])).to.deep.equal([
      ['a.jpg', 'done'],
      ['b.png', 'done'],
      ['c.jpg', 'failed'],
    ])
    expect(items[2]!.error?.code).to.equal('corrupt_image')
    expect((await readdir(out)).sort()).to.deep.equal(['a.jpg', 'b.png'])
    expect(await sizeOf(await readFile(path.join(out, 'b.png')))).to.include({width: 288, height: 192})
  })

  it('refuses what it cannot do in one sentence: no scale, no -o, a batch to stdout', async () => {
    const noScale = await runCli(['resize', PHOTO.jpeg.file, '-o', path.join(dir, 'x.jpg'), ...url()])
    expect(noScale.code).to.equal(1)
    expect(noScale.stderr).to.equal('imgscale: Give one or more image files (or http(s) URLs), then the scale factor (`imgscale resize a.jpg 0.5`), or --width/--height, --output or --preset.\n')
    const noOut = await runCli(['resize', PHOTO.jpeg.file, '0.5', ...url()])
    expect(noOut.code).to.not.equal(0)
    expect(noOut.stderr).to.contain('Missing required flag out')
    const batchToStdout = await runCli(['resize', PHOTO.jpeg.file, PHOTO.png.file, '0.5', '-o', '-', ...url()])
    expect(batchToStdout.code).to.equal(1)
    expect(batchToStdout.stderr).to.equal('imgscale: A batch needs a folder for -o, not "-".\n')
  })
})
