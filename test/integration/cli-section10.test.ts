/** The CLI for contract section 10: several --output into a folder, a URL as the FILE, the operations' flags, result -n, presets. */
import {mkdtemp, readdir, readFile, rm} from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'

import {expect} from 'chai'
import sharp from 'sharp'

import {runCli} from '../helpers/cli.js'
import {ImageSource} from '../helpers/image-source.js'
import {PHOTO, readPhoto, sizeOf} from '../helpers/images.js'
import {startServe, type Served} from '../helpers/serve.js'

describe('client commands: outputs, image URLs, operations, presets (contract section 10)', function () {
  this.timeout(120_000)
  let served: Served
  let source: ImageSource
  let dir: string
  before(async () => {
    source = await ImageSource.start({'/photo.jpg': readPhoto(PHOTO.jpeg.file)})
    served = await startServe(['-w', '1', '--fetch-allow', '127.0.0.1/32', '--preset', 'thumb=width=64,format=png'])
    dir = await mkdtemp(path.join(os.tmpdir(), 'imgscale-cli10-'))
  })
  after(async () => {
    await served?.stop()
    await source?.close()
    await rm(dir, {recursive: true, force: true})
  })
  const url = (): string[] => ['--url', served.url]

  it('submit FILE --output ... --output ... -o DIR/: one task, <stem>-<n>.<ext> for each output', async () => {
    const out = path.join(dir, 'srcset') + '/'
    const run = await runCli(['submit', PHOTO.jpeg.file, '--output', 'width=320,format=webp', '--output', 'width=100', '--output', 'preset=thumb', '-o', out, ...url()])
    expect(run.code, run.stderr).to.equal(0)
    expect(run.stdout.trim()).to.match(/^[0-7][0-9A-HJKMNP-TV-Z]{25}$/)
    expect((await readdir(out)).sort()).to.deep.equal(['Landscape_1-0.webp', 'Landscape_1-1.jpg', 'Landscape_1-2.png'])
    expect(await sizeOf(await readFile(path.join(out, 'Landscape_1-0.webp')))).to.include({format: 'webp', width: 320, height: 240})
    expect(await sizeOf(await readFile(path.join(out, 'Landscape_1-1.jpg')))).to.include({format: 'jpeg', width: 100, height: 75})
    expect(await sizeOf(await readFile(path.join(out, 'Landscape_1-2.png')))).to.include({format: 'png', width: 64, height: 48})

    const id = run.stdout.trim()
    const second = path.join(dir, 'second.jpg')
    const fetched = await runCli(['result', id, '-n', '1', '-o', second, ...url()])
    expect(fetched.code, fetched.stderr).to.equal(0)
    expect(await sizeOf(await readFile(second))).to.include({width: 100})
    const missing = await runCli(['result', id, '-n', '7', '-o', second, ...url()])
    expect(missing.code).to.equal(1)
    expect(missing.stderr).to.match(/no output "7"/)
  })

  it('a URL as the FILE: the server fetches it; the operation flags apply', async () => {
    const out = path.join(dir, 'fetched.png')
    const run = await runCli(['submit', source.url('/photo.jpg'), '0.5', '--grayscale', '--rotate', '90', '--flip', '--format', 'png', '--wait', '-o', out, ...url()])
    expect(run.code, run.stderr).to.equal(0)
    const {data, info} = await sharp(await readFile(out)).raw().toBuffer({resolveWithObject: true})
    expect([info.width, info.height]).to.deep.equal([225, 300])
    for (let i = 0; i < data.length; i += info.channels) expect(data[i + 1]).to.equal(data[i])
  })

  it('resize with --crop, --blur, --background and a preset; a fetch that fails says why in one sentence', async () => {
    const cropped = path.join(dir, 'cropped.jpg')
    const run = await runCli(['resize', PHOTO.jpeg.file, '--width', '100', '--crop', '0,0,300,150', '--blur', '1', '-o', cropped, ...url()])
    expect(run.code, run.stderr).to.equal(0)
    expect(await sizeOf(await readFile(cropped))).to.include({width: 100, height: 50})
    const padded = path.join(dir, 'padded.jpg')
    const pad = await runCli(['resize', PHOTO.jpeg.file, '--width', '100', '--height', '100', '--fit', 'contain', '--background', '#ff0000', '-o', padded, ...url()])
    expect(pad.code, pad.stderr).to.equal(0)
    const {data} = await sharp(await readFile(padded)).raw().toBuffer({resolveWithObject: true})
    expect(data[0]).to.be.above(240)
    const thumb = path.join(dir, 'thumb.png')
    const preset = await runCli(['resize', PHOTO.jpeg.file, '--preset', 'thumb', '-o', thumb, ...url()])
    expect(preset.code, preset.stderr).to.equal(0)
    expect(await sizeOf(await readFile(thumb))).to.include({format: 'png', width: 64})
    const failed = await runCli(['resize', source.url('/missing.jpg'), '0.5', '-o', path.join(dir, 'never.jpg'), ...url()])
    expect(failed.code).to.equal(1)
    expect(failed.stderr).to.match(/^imgscale: .*404.*\n$/)
  })

  it('refuses a malformed --output before sending anything', async () => {
    const run = await runCli(['submit', PHOTO.jpeg.file, '--output', 'width', ...url()])
    expect(run.code).to.not.equal(0)
    expect(run.stderr).to.match(/FIELD=VALUE/)
  })
})
