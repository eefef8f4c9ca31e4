/**
 * Contract section 5 against the real serve: width/height boxes with every
 * fit, smart crop, quality, format=auto and metadata, and every bad value.
 */
import {expect} from 'chai'
import sharp from 'sharp'

import {expectError, metric, upload, type StatusDoc} from '../helpers/api.js'
import {photo, PHOTO, readPhoto, rotatedJpeg, sizeOf} from '../helpers/images.js'
import {serveForSuite} from '../helpers/serve.js'

const LANDSCAPE = {file: PHOTO.jpeg.file, width: 600, height: 450}
const PORTRAIT = {file: photo('Portrait_1.jpg'), width: 450, height: 600}
/** Has EXIF, XMP and an ICC profile. */
const TAGGED = photo('Landscape_9.jpg')

describe('resize options (contract section 5)', function () {
  const served = serveForSuite()

  /** Uploads with these fields and waits for the end; returns the status and the result's bytes. */
  async function resize(image: Buffer, fields: Record<string, string>, headers: Record<string, string> = {}): Promise<{status: StatusDoc & {options: Record<string, unknown>}; result: Buffer}> {
    const response = await upload(served().url, {image, fields}, {query: 'wait=30', headers})
    const status = (await response.json()) as StatusDoc & {options: Record<string, unknown>}
    expect(response.status, JSON.stringify(status)).to.equal(200)
    expect(status.status, JSON.stringify(status.error)).to.equal('done')
    const result = Buffer.from(await (await fetch(`${served().url}${status.result_url}`)).arrayBuffer())
    // The status document's output always matches the file.
    const real = await sizeOf(result)
    expect({format: real.format === 'heif' ? 'avif' : real.format, width: real.width, height: real.height}).to.deep.equal({
      format: status.output!.format,
      width: status.output!.width,
      height: status.output!.height,
    })
    expect(status.output!.bytes).to.equal(result.length)
    return {status, result}
  }

  /** Contract: both sides given. */
  const boxes: Array<[string, typeof LANDSCAPE, string, string, [number, number]]> = [
    ['landscape', LANDSCAPE, 'inside', '200x200', [200, 150]],
    ['landscape', LANDSCAPE, 'outside', '200x200', [267, 200]],
    ['landscape', LANDSCAPE, 'cover', '200x200', [200, 200]],
    ['landscape', LANDSCAPE, 'contain', '200x200', [200, 200]],
    ['landscape', LANDSCAPE, 'fill', '300x100', [300, 100]],
    ['portrait', PORTRAIT, 'inside', '200x200', [150, 200]],
    ['portrait', PORTRAIT, 'outside', '200x200', [200, 267]],
    ['portrait', PORTRAIT, 'cover', '300x100', [300, 100]],
    ['portrait', PORTRAIT, 'contain', '300x100', [300, 100]],
    ['portrait', PORTRAIT, 'fill', '100x300', [100, 300]],
  ]
  for (const [shape, input, fit, box, [width, height]] of boxes) {
    it(`${shape} ${input.width}x${input.height}, fit=${fit}, box ${box} -> exactly ${width}x${height}`, async () => {
      const [w, h] = box.split('x')
      const {status} = await resize(readPhoto(input.file), {width: w!, height: h!, fit})
      expect(status.output).to.include({width, height, format: 'jpeg'})
      expect(status.scale_factor).to.equal(null)
      expect(status.options).to.deep.equal({scale_factor: null, width: Number(w), height: Number(h), fit, position: 'centre', quality: null, format: null, metadata: 'strip', crop: null, rotate: 0, flip: false, flop: false, grayscale: false, blur: null, sharpen: null, background: null, preset: null})
    })
  }

  for (const fit of ['inside', 'cover', 'fill', 'contain', 'outside']) {
    it(`one side only, fit=${fit}: the other follows the aspect ratio, landscape and portrait`, async () => {
      expect((await resize(readPhoto(LANDSCAPE.file), {width: '300', fit})).status.output).to.include({width: 300, height: 225})
      expect((await resize(readPhoto(PORTRAIT.file), {height: '100', fit})).status.output).to.include({width: 75, height: 100})
    })
  }

  it('sizes from the oriented image: an EXIF-rotated 600x450 JPEG is 450 wide', async () => {
    const {status} = await resize(await rotatedJpeg(), {width: '225'})
    expect(status.input).to.include({width: 450, height: 600})
    expect(status.output).to.include({width: 225, height: 300})
  })

  it('cover keeps what position says: north and south crops differ, entropy and attention give the box', async () => {
    const image = readPhoto(PORTRAIT.file)
    const north = await resize(image, {width: '450', height: '100', fit: 'cover', position: 'north'})
    const south = await resize(image, {width: '450', height: '100', fit: 'cover', position: 'south'})
    expect(north.result.equals(south.result)).to.equal(false)
    // The north crop is the top strip of the photo, the south one the bottom strip.
    const strip = async (top: number): Promise<Buffer> => sharp(PORTRAIT.file).extract({left: 0, top, width: 450, height: 100}).raw().toBuffer()
    const pixels = async (jpeg: Buffer): Promise<Buffer> => sharp(jpeg).raw().toBuffer()
    expect(meanDiff(await pixels(north.result), await strip(0))).to.be.below(8)
    expect(meanDiff(await pixels(south.result), await strip(500))).to.be.below(8)
    for (const position of ['entropy', 'attention']) {
      const {status} = await resize(readPhoto(PHOTO.jpegLarge.file), {width: '300', height: '300', fit: 'cover', position})
      expect(status.output, position).to.include({width: 300, height: 300})
      expect(status.options.position).to.equal(position)
    }
  })

  it('contain pads: transparent for PNG output, black for JPEG (contract section 10\'s default background)', async () => {
    const png = await resize(readPhoto(LANDSCAPE.file), {width: '200', height: '200', fit: 'contain', format: 'png'})
    const corner = await sharp(png.result).ensureAlpha().extract({left: 0, top: 0, width: 1, height: 1}).raw().toBuffer()
    expect(corner[3]).to.equal(0)
    const jpeg = await resize(readPhoto(LANDSCAPE.file), {width: '200', height: '200', fit: 'contain'})
    const black = await sharp(jpeg.result).extract({left: 0, top: 0, width: 1, height: 1}).raw().toBuffer()
    expect([...black].every((channel) => channel < 10)).to.equal(true)
  })

  it('quality changes the bytes: lower quality, smaller file, for JPEG, WebP and AVIF', async () => {
    for (const format of ['jpeg', 'webp', 'avif']) {
      const low = await resize(readPhoto(LANDSCAPE.file), {scale_factor: '0.5', format, quality: '10'})
      const high = await resize(readPhoto(LANDSCAPE.file), {scale_factor: '0.5', format, quality: '95'})
      expect(low.result.length, format).to.be.below(high.result.length)
      expect(low.status.options.quality).to.equal(10)
    }
  })

  it('format=auto follows the upload request\'s Accept: AVIF, else WebP, else the input format', async () => {
    const image = readPhoto(LANDSCAPE.file)
    const avif = await resize(image, {scale_factor: '0.25', format: 'auto'}, {Accept: 'image/avif,image/webp,*/*;q=0.8'})
    expect(avif.status.output!.format).to.equal('avif')
    expect(avif.status.options.format).to.equal('auto')
    expect((await resize(image, {scale_factor: '0.25', format: 'auto'}, {Accept: 'image/webp,*/*'})).status.output!.format).to.equal('webp')
    expect((await resize(image, {scale_factor: '0.25', format: 'auto'}, {Accept: '*/*'})).status.output!.format).to.equal('jpeg')
    expect((await resize(readPhoto(PHOTO.png.file), {scale_factor: '0.25', format: 'auto'})).status.output!.format).to.equal('png')
  })

  it('metadata=keep keeps EXIF, XMP and the ICC profile; strip (the default) keeps none', async () => {
    const source = await sharp(TAGGED).metadata()
    expect(source.exif && source.icc && source.xmp, 'the fixture has all three').to.be.ok
    const kept = await sharp((await resize(readPhoto(TAGGED), {scale_factor: '0.5', metadata: 'keep'})).result).metadata()
    expect(kept.exif, 'EXIF').to.be.ok
    expect(kept.xmp, 'XMP').to.be.ok
    expect(kept.icc?.equals(source.icc!), 'the same ICC profile').to.equal(true)
    const stripped = await sharp((await resize(readPhoto(TAGGED), {scale_factor: '0.5'})).result).metadata()
    expect([stripped.exif, stripped.xmp, stripped.icc]).to.deep.equal([undefined, undefined, undefined])
  })

  it('metadata=keep on a rotated photo: the pixels are turned once, and the kept EXIF does not turn them again', async () => {
    const {result, status} = await resize(await rotatedJpeg(), {scale_factor: '0.5', metadata: 'keep'})
    expect(status.output).to.include({width: 225, height: 300})
    const meta = await sharp(result).metadata()
    expect(meta.exif).to.be.ok
    expect(meta.orientation ?? 1).to.equal(1)
  })

  describe('bad values: 400, naming the field, and no task is made', () => {
    const bad: Array<[string, Record<string, string>, number, string, RegExp]> = [
      ['width 0', {width: '0'}, 400, 'invalid_option', /^width must be an integer from 1 to 16384/],
      ['width 16385', {width: '16385'}, 400, 'invalid_option', /^width/],
      ['width 12.5', {width: '12.5'}, 400, 'invalid_option', /^width/],
      ['height abc', {height: 'abc'}, 400, 'invalid_option', /^height/],
      ['fit stretch', {scale_factor: '0.5', fit: 'stretch'}, 400, 'invalid_option', /^fit must be one of inside, contain, cover, fill, outside/],
      ['position middle', {scale_factor: '0.5', position: 'middle'}, 400, 'invalid_option', /^position must be one of centre, north/],
      ['quality 0', {scale_factor: '0.5', quality: '0'}, 400, 'invalid_option', /^quality must be an integer from 1 to 100/],
      ['quality 101', {scale_factor: '0.5', quality: '101'}, 400, 'invalid_option', /^quality/],
      ['quality for PNG output', {scale_factor: '0.5', quality: '50', format: 'png'}, 400, 'invalid_option', /^quality applies to JPEG, WebP, AVIF and TIFF/],
      ['metadata all', {scale_factor: '0.5', metadata: 'all'}, 400, 'invalid_option', /^metadata must be one of strip, keep/],
      ['format bmp', {scale_factor: '0.5', format: 'bmp'}, 400, 'invalid_format', /auto/],
      ['scale_factor and width', {scale_factor: '0.5', width: '100'}, 400, 'invalid_request', /either scale_factor or width\/height/],
      ['neither scale_factor nor a box', {fit: 'cover'}, 400, 'invalid_scale_factor', /scale_factor is required/],
      ['an outside box past the output limit', {width: '16384', height: '16384', fit: 'outside'}, 422, 'image_too_large', /output/],
    ]
    for (const [what, fields, status, code, message] of bad) {
      it(`${what}: ${status} ${code}`, async () => {
        const before = await metric(served().url, 'imgscale_upload_bytes_total')
        const error = await expectError(await upload(served().url, {image: readPhoto(LANDSCAPE.file), fields}), status, code)
        expect(error.message).to.match(message)
        expect(await metric(served().url, 'imgscale_upload_bytes_total')).to.equal(before)
      })
    }
  })
})

function meanDiff(a: Buffer, b: Buffer): number {
  expect(a.length).to.equal(b.length)
  let sum = 0
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!)
  return sum / a.length
}
