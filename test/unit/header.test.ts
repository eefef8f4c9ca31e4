/**
 * The libvips-free header reader (src/image/header.ts) against libvips
 * itself: wherever it answers, it must give the size sharp's metadata gives
 * (after EXIF orientation), and it must answer for ordinary photos, or the
 * fast path would silently never run. Damaged headers must fall through to
 * libvips (undefined), never come out as a size libvips would refuse.
 */
import {readdirSync, readFileSync} from 'node:fs'

import {expect} from 'chai'
import sharp from 'sharp'

import {readHeader} from '../../src/image/header.js'
import type {ImageFormat} from '../../src/image/formats.js'
import {animation, photo, PHOTO, PHOTOS, pngClaiming} from '../helpers/images.js'

async function libvipsSize(image: Buffer): Promise<{width: number; height: number} | undefined> {
  try {
    const meta = await sharp(image, {limitInputPixels: false}).metadata()
    return meta.autoOrient
  } catch {
    return undefined
  }
}

async function expectAgreement(format: ImageFormat, image: Buffer, what: string): Promise<void> {
  const fast = readHeader(format, image)
  expect(fast, `${what}: the fast reader should measure it`).to.not.equal(undefined)
  expect(fast, what).to.deep.equal(await libvipsSize(image))
}

describe('header reader: sizes without libvips', function () {
  this.timeout(60_000)

  it('measures every fixture photo (JPEG, PNG, WebP) exactly as libvips does', async () => {
    const files = readdirSync(PHOTOS).filter((name) => /\.(jpe?g|png|webp)$/i.test(name))
    expect(files.length).to.be.at.least(8)
    for (const name of files) {
      const format: ImageFormat = name.endsWith('.png') ? 'png' : name.endsWith('.webp') ? 'webp' : 'jpeg'
      await expectAgreement(format, readFileSync(photo(name)), name)
    }
  })

  it('applies every EXIF orientation 1-8 as sharp autoOrient does', async () => {
    for (let orientation = 1; orientation <= 8; orientation++) {
      const image = await sharp(PHOTO.jpeg.file).withMetadata({orientation}).jpeg().toBuffer()
      await expectAgreement('jpeg', image, `orientation ${orientation}`)
      expect(readHeader('jpeg', image)!.width).to.equal(orientation >= 5 ? PHOTO.jpeg.height : PHOTO.jpeg.width)
    }
  })

  it('reads an EXIF orientation of 0 or above 8 as 1, as libvips does (issue 20)', async () => {
    const tagged = await sharp(PHOTO.jpeg.file).withMetadata({orientation: 6}).jpeg().toBuffer()
    // The orientation entry: tag 0x0112, type SHORT (3), count 1, then the value; big- or little-endian.
    const entry = [Buffer.from([0x01, 0x12, 0x00, 0x03, 0, 0, 0, 1]), Buffer.from([0x12, 0x01, 0x03, 0x00, 1, 0, 0, 0])]
      .map((pattern) => ({at: tagged.indexOf(pattern), little: pattern[0] === 0x12}))
      .find(({at}) => at >= 0)!
    expect(entry, 'the orientation entry').to.not.equal(undefined)
    for (const value of [0, 9, 255]) {
      const image = Buffer.from(tagged)
      if (entry.little) image.writeUInt16LE(value, entry.at + 8)
      else image.writeUInt16BE(value, entry.at + 8)
      await expectAgreement('jpeg', image, `orientation ${value}`)
      expect(readHeader('jpeg', image), `orientation ${value}`).to.deep.equal({width: PHOTO.jpeg.width, height: PHOTO.jpeg.height})
    }
  })

  it('measures a lossy WebP whose scale bits are set by its 14-bit sizes alone, as libwebp does (issue 20)', async () => {
    const lossy = await sharp(PHOTO.jpeg.file).webp({quality: 70}).toBuffer()
    const vp8 = lossy.indexOf('VP8 ', 12, 'latin1')
    expect(vp8, 'a VP8 chunk').to.equal(12)
    const scaled = Buffer.from(lossy)
    // Width and height are 16-bit little-endian at the chunk data + 6 and + 8; their top two bits are the upscaling hint.
    for (const at of [vp8 + 8 + 6, vp8 + 8 + 8]) scaled.writeUInt16LE(scaled.readUInt16LE(at) | 0xc000, at)
    await expectAgreement('webp', scaled, 'scale bits set')
    expect(readHeader('webp', scaled)).to.deep.equal({width: PHOTO.jpeg.width, height: PHOTO.jpeg.height})
  })

  it('measures progressive, greyscale and CMYK JPEGs; palette, 16-bit, grey and interlaced PNGs; lossy, lossless and alpha WebPs', async () => {
    const source = sharp(PHOTO.png.file)
    const cases: Array<[ImageFormat, Promise<Buffer>, string]> = [
      ['jpeg', sharp(PHOTO.jpeg.file).jpeg({progressive: true}).toBuffer(), 'progressive JPEG'],
      ['jpeg', sharp(PHOTO.jpeg.file).greyscale().jpeg().toBuffer(), 'greyscale JPEG'],
      ['jpeg', sharp(PHOTO.jpeg.file).toColourspace('cmyk').jpeg().toBuffer(), 'CMYK JPEG'],
      ['png', source.clone().png({palette: true}).toBuffer(), 'palette PNG'],
      ['png', source.clone().toColourspace('rgb16').png().toBuffer(), '16-bit PNG'],
      ['png', source.clone().greyscale().png().toBuffer(), 'grey PNG'],
      ['png', source.clone().png({progressive: true}).toBuffer(), 'interlaced PNG'],
      ['webp', sharp(PHOTO.jpeg.file).webp().toBuffer(), 'lossy WebP (VP8)'],
      ['webp', sharp(PHOTO.jpeg.file).webp({lossless: true}).toBuffer(), 'lossless WebP (VP8L)'],
      ['webp', source.clone().webp().toBuffer(), 'WebP with alpha (VP8X)'],
      ['png', Promise.resolve(pngClaiming(100_000, 100_000)), 'a decompression bomb is still measured, to be refused'],
    ]
    for (const [format, image, what] of cases) await expectAgreement(format, await image, what)
  })

  it('leaves animations, EXIF-tagged WebP and the other formats to libvips', async () => {
    expect(readHeader('webp', await animation('webp', 3))).to.equal(undefined)
    expect(readHeader('webp', await sharp(PHOTO.jpeg.file).withMetadata({orientation: 6}).webp().toBuffer())).to.equal(undefined)
    expect(readHeader('gif', await animation('gif', 1))).to.equal(undefined)
    expect(readHeader('avif', await sharp(PHOTO.jpeg.file).avif({effort: 0}).toBuffer())).to.equal(undefined)
    expect(readHeader('tiff', await sharp(PHOTO.jpeg.file).tiff().toBuffer())).to.equal(undefined)
  })

  it('answers nothing for a header cut short, a bad IHDR checksum, or garbage after the signature', async () => {
    const jpeg = readFileSync(PHOTO.jpeg.file)
    const png = readFileSync(PHOTO.png.file)
    expect(readHeader('jpeg', jpeg.subarray(0, 100))).to.equal(undefined)
    expect(readHeader('png', png.subarray(0, 30))).to.equal(undefined)
    const badCrc = Buffer.from(png)
    badCrc[20] ^= 0x01
    expect(readHeader('png', badCrc)).to.equal(undefined)
    const garbage = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.from(Array.from({length: 4096}, (_, i) => (i * 73 + 41) % 256))])
    expect(readHeader('jpeg', garbage)).to.equal(undefined)
  })

  it('never gives a wrong size: 1500 damaged headers, each it measures libvips measures the same or cannot decode at all', async () => {
    // Deterministic damage: one to three bytes of the first 700 changed, per file.
    let seed = 12345
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      return seed % n
    }
    const sources: Array<[ImageFormat, Buffer]> = [
      ['jpeg', await sharp(PHOTO.jpeg.file).withMetadata({orientation: 6}).jpeg().toBuffer()],
      ['jpeg', readFileSync(PHOTO.jpegGrey.file)],
      ['png', readFileSync(PHOTO.png.file)],
      ['webp', readFileSync(PHOTO.webp.file)],
      ['webp', await sharp(PHOTO.jpeg.file).webp({lossless: true}).toBuffer()],
    ]
    let measured = 0
    for (const [format, source] of sources) {
      for (let i = 0; i < 300; i++) {
        const damaged = Buffer.from(source)
        for (let n = 1 + random(3); n > 0; n--) damaged[random(Math.min(700, damaged.length))] = random(256)
        const fast = readHeader(format, damaged)
        if (!fast) continue
        measured++
        const libvips = await libvipsSize(damaged)
        if (libvips) {
          expect(fast, `${format} damage #${i}`).to.deep.equal(libvips)
        } else {
          // Damage only libvips's fuller header read sees: the worker's decode must refuse it too, so the task fails.
          const decoded = await sharp(damaged, {failOn: 'warning'}).toBuffer().then(() => true, () => false)
          expect(decoded, `${format} damage #${i}: libvips refuses its header but decodes it`).to.equal(false)
        }
      }
    }
    // Most single-byte damage lands in data the header does not use: the fast path must still be taken then.
    expect(measured).to.be.above(500)
  })
})
