/**
 * The worker's pipeline with section 10's operations, on real photos and
 * real sharp: what each operation does to the pixels, checked against
 * sharp's own operations on the source, and several outputs from one
 * decode matching what one output at a time makes.
 */
import {expect} from 'chai'
import sharp, {type Sharp} from 'sharp'

import {resizeImage, resizeImages} from '../../src/backend/pipeline.js'
import {PLAIN_RESIZE, type ResizePlan} from '../../src/image/plan.js'
import {animation, PHOTO, readPhoto} from '../helpers/images.js'

const LIMITS = {maxInputPixels: 50_000_000, timeoutMs: 30_000, concurrency: 2}
const SOURCE = readPhoto(PHOTO.jpeg.file) // 600x450, in colour
const plan = (overrides: Partial<ResizePlan>): ResizePlan => ({format: 'png', width: 600, height: 450, frames: 1, ...PLAIN_RESIZE, ...overrides})

interface Pixels {
  data: Buffer
  width: number
  height: number
  channels: number
}

async function pixels(image: Buffer | Sharp): Promise<Pixels> {
  const {data, info} = await (Buffer.isBuffer(image) ? sharp(image) : image).raw().toBuffer({resolveWithObject: true})
  return {data, width: info.width, height: info.height, channels: info.channels}
}

const at = (p: Pixels, x: number, y: number): number[] => [...p.data.subarray((y * p.width + x) * p.channels, (y * p.width + x + 1) * p.channels)]

function maxDifference(a: Pixels, b: Pixels): number {
  expect([a.width, a.height, a.channels]).to.deep.equal([b.width, b.height, b.channels])
  let max = 0
  for (let i = 0; i < a.data.length; i++) max = Math.max(max, Math.abs(a.data[i]! - b.data[i]!))
  return max
}

function meanDifference(a: Pixels, b: Pixels): number {
  let sum = 0
  for (let i = 0; i < a.data.length; i++) sum += Math.abs(a.data[i]! - b.data[i]!)
  return sum / a.data.length
}

/** Mean absolute difference between horizontal neighbours: what a blur lowers and sharpening raises. */
function edgeEnergy(p: Pixels): number {
  let sum = 0
  for (let y = 0; y < p.height; y++) {
    for (let x = 1; x < p.width; x++) for (let c = 0; c < Math.min(3, p.channels); c++) sum += Math.abs(at(p, x, y)[c]! - at(p, x - 1, y)[c]!)
  }
  return sum / (p.height * (p.width - 1))
}

const make = async (overrides: Partial<ResizePlan>): Promise<Pixels> => pixels((await resizeImage(SOURCE, plan(overrides), LIMITS)).data)

describe('pipeline: the operations of section 10, on the pixels', () => {
  it('grayscale: every pixel has equal channels (the photo does not)', async () => {
    const colour = await make({width: 300, height: 225})
    expect(colour.data.some((_, i) => i % 3 === 0 && (colour.data[i] !== colour.data[i + 1] || colour.data[i] !== colour.data[i + 2]))).to.equal(true)
    for (const format of ['png', 'jpeg'] as const) {
      const grey = await pixels(sharp((await resizeImage(SOURCE, plan({format, width: 300, height: 225, grayscale: true}), LIMITS)).data).toColourspace('srgb'))
      for (let i = 0; i < grey.data.length; i += grey.channels) {
        expect(grey.data[i + 1], `${format} pixel ${i / grey.channels}`).to.equal(grey.data[i])
        expect(grey.data[i + 2], `${format} pixel ${i / grey.channels}`).to.equal(grey.data[i])
      }
    }
  })

  it('crop takes exactly the region sharp extracts from the source', async () => {
    const region = {x: 37, y: 91, width: 211, height: 143}
    const cropped = await make({crop: region, width: region.width, height: region.height})
    const reference = await pixels(sharp(SOURCE).extract({left: region.x, top: region.y, width: region.width, height: region.height}))
    expect(maxDifference(cropped, reference)).to.equal(0)
  })

  it('flip mirrors up-down, flop left-right', async () => {
    const plain = await make({})
    const flipped = await make({flip: true})
    const flopped = await make({flop: true})
    for (const [x, y] of [[0, 0], [17, 300], [599, 449], [250, 3]] as const) {
      expect(at(flipped, x, y), `flip ${x},${y}`).to.deep.equal(at(plain, x, 449 - y))
      expect(at(flopped, x, y), `flop ${x},${y}`).to.deep.equal(at(plain, 599 - x, y))
    }
  })

  it('crop, then rotate, then flip and flop, in the contract\'s order, whatever sharp does inside: every combination', async () => {
    const region = {x: 10, y: 20, width: 200, height: 100}
    for (const withCrop of [false, true]) {
      for (const rotate of [0, 90, 180, 270] as const) {
        for (const [flip, flop] of [[false, false], [true, false], [false, true], [true, true]] as const) {
          // The reference: one operation at a time, each its own pipeline, in the contract's order.
          let step = withCrop ? await sharp(SOURCE).extract({left: 10, top: 20, width: 200, height: 100}).png().toBuffer() : SOURCE
          if (rotate !== 0) step = await sharp(step).rotate(rotate).png().toBuffer()
          if (flip) step = await sharp(step).flip().png().toBuffer()
          if (flop) step = await sharp(step).flop().png().toBuffer()
          const reference = await pixels(step)
          const made = await make({crop: withCrop ? region : null, rotate, flip, flop, width: reference.width, height: reference.height})
          // Without a crop the reference went through JPEG decoding once more: near, not equal.
          expect(withCrop ? maxDifference(made, reference) : meanDifference(made, reference), `crop ${withCrop}, rotate ${rotate}, flip ${flip}, flop ${flop}`).to.be.at.most(withCrop ? 0 : 1)
        }
      }
    }
  })

  it('blur lowers the high-frequency energy, sharpen raises it', async () => {
    const plain = edgeEnergy(await make({width: 300, height: 225}))
    const blurred = edgeEnergy(await make({width: 300, height: 225, blur: 3}))
    const sharpened = edgeEnergy(await make({width: 300, height: 225, sharpen: 2}))
    expect(blurred).to.be.below(plain * 0.5)
    expect(sharpened).to.be.above(plain * 1.1)
  })

  it('background colours the padding of contain; by default it is black, transparent where the format has alpha', async () => {
    const red = await make({format: 'jpeg', width: 600, height: 600, fit: 'contain', background: {r: 255, g: 0, b: 0, alpha: 1}})
    const [r, g, b] = at(red, 300, 5)
    expect(r).to.be.above(240)
    expect(g! + b!).to.be.below(30)
    expect(at(await make({format: 'jpeg', width: 600, height: 600, fit: 'contain'}), 300, 5).every((value) => value < 10)).to.equal(true)
    const clear = await make({format: 'png', width: 600, height: 600, fit: 'contain'})
    expect(clear.channels).to.equal(4)
    expect(at(clear, 300, 5)[3]).to.equal(0)
    expect(at(clear, 300, 300)[3]).to.equal(255)
  })

  it('background is what transparency is flattened onto for JPEG', async () => {
    // A half-transparent PNG: the left half clear, the right half opaque blue.
    const raw = Buffer.alloc(40 * 20 * 4)
    for (let i = 0; i < 40 * 20; i++) if (i % 40 >= 20) raw.set([0, 0, 255, 255], i * 4)
    const png = await sharp(raw, {raw: {width: 40, height: 20, channels: 4}}).png().toBuffer()
    const jpeg = await pixels((await resizeImage(png, plan({format: 'jpeg', width: 40, height: 20, background: {r: 0, g: 255, b: 0, alpha: 1}}), LIMITS)).data)
    const [r, g, b] = at(jpeg, 5, 10)
    expect(g).to.be.above(240)
    expect(r! + b!).to.be.below(30)
    expect(at(jpeg, 35, 10)[2]).to.be.above(240)
  })
})

describe('pipeline: several outputs from one decode', () => {
  it('each output has its plan\'s format and size, and the pixels one output at a time would have', async () => {
    const plans = [plan({format: 'png', width: 320, height: 240}), plan({format: 'webp', width: 160, height: 120}), plan({format: 'png', width: 60, height: 45, grayscale: true})]
    const together = await resizeImages(SOURCE, plans, LIMITS)
    expect(together.map((output) => [output.format, output.width, output.height])).to.deep.equal([
      ['png', 320, 240],
      ['webp', 160, 120],
      ['png', 60, 45],
    ])
    for (const [i, output] of together.entries()) {
      const alone = await pixels((await resizeImage(SOURCE, plans[i]!, LIMITS)).data)
      const meta = await sharp(output.data).metadata()
      expect(meta.format).to.equal(plans[i]!.format)
      // Made from pixels shrunk once already (and WebP is lossy): near what one pipeline makes, not equal.
      expect(meanDifference(await pixels(output.data), alone), `output ${i}`).to.be.below(plans[i]!.format === 'webp' ? 6 : 3)
    }
  })

  it('outputs that crop and turn differently each get their own region', async () => {
    const plans = [
      plan({crop: {x: 0, y: 0, width: 100, height: 50}, width: 100, height: 50}),
      plan({crop: {x: 300, y: 200, width: 60, height: 40}, rotate: 90, width: 40, height: 60}),
      plan({width: 60, height: 45, keepMetadata: true, format: 'jpeg'}),
    ]
    const together = await resizeImages(SOURCE, plans, LIMITS)
    expect(together.map((output) => [output.width, output.height])).to.deep.equal([
      [100, 50],
      [40, 60],
      [60, 45],
    ])
    for (const i of [0, 1]) expect(maxDifference(await pixels(together[i]!.data), await pixels((await resizeImage(SOURCE, plans[i]!, LIMITS)).data)), `output ${i}`).to.equal(0)
  })

  it('outputs that differ only by rotation each come out as one output alone would make them (issue 29, 22)', async () => {
    const plans = [plan({width: 300, height: 225}), plan({rotate: 90, width: 225, height: 300}), plan({rotate: 270, width: 150, height: 200})]
    const together = await resizeImages(SOURCE, plans, LIMITS)
    for (const [i, output] of together.entries()) {
      expect(meanDifference(await pixels(output.data), await pixels((await resizeImage(SOURCE, plans[i]!, LIMITS)).data)), `output ${i}`).to.be.below(3)
    }
  })

  it('outputs of very different shapes are made from pixels kept at the largest scale any of them needs, so none is blurred (issue 29, 11)', async () => {
    // A wide strip needs the full width, a tall one the full height: shrinking the shared pixels for either alone would blur the other.
    const plans = [plan({width: 600, height: 60}), plan({width: 60, height: 450}), plan({width: 100, height: 75})]
    const together = await resizeImages(SOURCE, plans, LIMITS)
    for (const [i, output] of together.entries()) {
      expect(meanDifference(await pixels(output.data), await pixels((await resizeImage(SOURCE, plans[i]!, LIMITS)).data)), `output ${i}`).to.be.below(3)
    }
  })

  it('an output that keeps metadata keeps the EXIF, XMP and ICC profile, beside outputs made from shared pixels (issue 29, 9)', async () => {
    const source = readPhoto(PHOTO.jpegOddHeight.file) // 480x369 with ICC, XMP and IPTC
    const original = await sharp(source).metadata()
    expect(original.icc, 'the source has an ICC profile').to.be.instanceOf(Buffer)
    const plans = [plan({width: 240, height: 185}), plan({width: 120, height: 92}), plan({format: 'jpeg', width: 240, height: 185, keepMetadata: true})]
    const together = await resizeImages(source, plans, LIMITS)
    const kept = await sharp(together[2]!.data).metadata()
    expect(kept.icc?.equals(original.icc!), 'the ICC profile').to.equal(true)
    expect(kept.xmp, 'the XMP').to.be.instanceOf(Buffer)
    expect((await sharp(together[0]!.data).metadata()).icc, 'a stripped output has none').to.equal(undefined)
  })

  it('an animated output keeps every frame, beside still outputs made from one shared frame (issue 29, 10)', async () => {
    const gif = await animation('gif', 5, 40, 30)
    const plans = [plan({format: 'png', width: 20, height: 15}), plan({format: 'png', width: 10, height: 8}), plan({format: 'gif', width: 20, height: 15, frames: 5})]
    const together = await resizeImages(gif, plans, LIMITS)
    expect((await sharp(together[2]!.data, {animated: true}).metadata()).pages).to.equal(5)
    expect((await sharp(together[0]!.data).metadata()).pages ?? 1).to.equal(1)
  })

  it('made one at a time or several at once, the outputs are the same bytes, in the same order', async () => {
    const plans = [plan({format: 'jpeg', width: 320, height: 240}), plan({format: 'png', width: 160, height: 120}), plan({format: 'jpeg', width: 60, height: 45, blur: 1})]
    const [one, three] = [await resizeImages(SOURCE, plans, {...LIMITS, concurrency: 1}), await resizeImages(SOURCE, plans, {...LIMITS, concurrency: 3})]
    expect(three.map((output) => output.width)).to.deep.equal([320, 160, 60])
    for (const i of [0, 1, 2]) expect(three[i]!.data.equals(one[i]!.data), `output ${i}`).to.equal(true)
  })

  it('one output that fails fails the job, whichever lane made it', async () => {
    const tooBig = plan({format: 'webp', width: 20_000, height: 15_000})
    for (const concurrency of [1, 2]) {
      const failure = await resizeImages(SOURCE, [plan({width: 10, height: 10}), tooBig, plan({width: 20, height: 15})], {...LIMITS, concurrency}).then(
        () => undefined,
        (error: unknown) => error,
      )
      expect(failure, `concurrency ${concurrency}`).to.have.property('code', 'image_too_large')
    }
  })

  it('a damaged upload fails all of them, as one output would', async () => {
    const truncated = SOURCE.subarray(0, SOURCE.length / 2)
    const failure = await resizeImages(truncated, [plan({width: 10, height: 10}), plan({width: 20, height: 15})], LIMITS).then(
      () => undefined,
      (error: unknown) => error,
    )
    expect(failure).to.have.property('code', 'corrupt_image')
  })
})
