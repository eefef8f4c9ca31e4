import {expect} from 'chai'

import {ImgscaleError} from '../../src/errors.js'
import type {ImageFormat} from '../../src/image/formats.js'
import {scaleOptions, type ResizeOptions} from '../../src/image/options.js'
import {acceptedFormats, negotiateFormat, outputSize, PLAIN_RESIZE, planOutputs, planResize, scaledSize, sourceSize} from '../../src/image/plan.js'
import type {ImageInfo} from '../../src/image/probe.js'

const LIMITS = {maxInputPixels: 50_000_000, maxOutputPixels: 100_000_000, maxFrames: 256}
const jpeg = (width: number, height: number, frames = 1): ImageInfo => ({format: 'jpeg', width, height, frames, bytes: 1})
const opts = (scale: number, format?: ImageFormat): ResizeOptions => scaleOptions(scale, format ?? null)

describe('resize planning', () => {
  it('computes max(1, round(w*s)) x max(1, round(h*s))', () => {
    expect(scaledSize(2725, 2225, 0.5)).to.deep.equal({width: 1363, height: 1113})
    expect(scaledSize(480, 369, 0.5)).to.deep.equal({width: 240, height: 185})
    expect(scaledSize(600, 450, 0.1)).to.deep.equal({width: 60, height: 45})
    expect(scaledSize(600, 450, 2)).to.deep.equal({width: 1200, height: 900})
    expect(scaledSize(600, 450, 0.0001)).to.deep.equal({width: 1, height: 1})
  })

  it('keeps the input format unless one is requested', () => {
    expect(planResize(jpeg(600, 450), opts(0.5, undefined), LIMITS)).to.deep.equal({format: 'jpeg', width: 300, height: 225, frames: 1, ...PLAIN_RESIZE})
    expect(planResize(jpeg(600, 450), opts(0.5, 'png'), LIMITS).format).to.equal('png')
  })

  it('keeps every frame of an animation only when the output format can hold them', () => {
    const gif: ImageInfo = {format: 'gif', width: 40, height: 30, frames: 3, bytes: 1}
    expect(planResize(gif, opts(0.5, undefined), LIMITS).frames).to.equal(3)
    expect(planResize(gif, opts(0.5, 'webp'), LIMITS).frames).to.equal(3)
    expect(planResize(gif, opts(0.5, 'jpeg'), LIMITS).frames).to.equal(1)
  })

  const tooLarge: Array<[string, ImageInfo, number, string | undefined]> = [
    ['an input over the pixel limit', jpeg(8000, 7000), 0.1, undefined],
    ['an animation over the pixel limit by its frames together', {format: 'gif', width: 1000, height: 1000, frames: 60, bytes: 1}, 0.1, undefined],
    ['an animation over the frame limit', {format: 'gif', width: 10, height: 10, frames: 257, bytes: 1}, 1, undefined],
    ['an output over the pixel limit', jpeg(4000, 3000), 3, undefined],
    ['an output wider than WebP allows', jpeg(2000, 100), 9, 'webp'],
  ]
  for (const [what, input, scale, format] of tooLarge) {
    it(`refuses ${what} with image_too_large`, () => {
      expect(() => planResize(input, opts(scale, format as never), LIMITS)).to.throw(ImgscaleError).with.property('code', 'image_too_large')
    })
  }
})

describe('resize planning at the limits', () => {
  const LIMITS = {maxInputPixels: 1_000_000, maxOutputPixels: 2_000_000, maxFrames: 4}
  const gif = (width: number, height: number, frames: number): ImageInfo => ({format: 'gif', width, height, frames, bytes: 1})
  const refusal = (run: () => unknown): string => {
    try {
      run()
    } catch (error) {
      expect(error).to.be.instanceOf(ImgscaleError).with.property('code', 'image_too_large')
      return (error as Error).message
    }
    throw new Error('not refused')
  }

  it('takes exactly the limits, and refuses one past them, with a message that gives both figures', () => {
    expect(planResize(gif(500, 500, 4), opts(1, undefined), LIMITS).frames).to.equal(4)
    expect(refusal(() => planResize(gif(10, 10, 5), opts(1, undefined), LIMITS))).to.equal('The image has 5 frames; the limit is 4.')
    expect(planResize(gif(1000, 1000, 1), opts(1, undefined), LIMITS)).to.include({width: 1000, height: 1000})
    expect(refusal(() => planResize(gif(1000, 1001, 1), opts(1, undefined), LIMITS))).to.equal('The image has 1 MP; the input limit is 1 MP.')
    expect(refusal(() => planResize(gif(600, 500, 4), opts(1, undefined), LIMITS))).to.equal('The image has 1.2 MP over 4 frames; the input limit is 1 MP.')
  })

  it('counts every output frame against the output limit, and names them', () => {
    // 250x250 x 4 frames at 2: 500x500 x 4 = 1 MP, fine; at 2.83 it is 2 MP and over.
    expect(planResize(gif(250, 250, 4), opts(2, undefined), LIMITS)).to.deep.equal({format: 'gif', width: 500, height: 500, frames: 4, ...PLAIN_RESIZE})
    expect(refusal(() => planResize(gif(250, 250, 4), opts(2.9, undefined), LIMITS))).to.equal(
      'The output would be 725x725 x 4 frames (2.1 MP); the output limit is 2 MP.',
    )
    expect(planResize(gif(250, 250, 4), opts(2.9, 'png'), LIMITS).frames).to.equal(1)
  })

  it('allows the largest side a format can hold, and refuses one pixel more on either side', () => {
    const wide = {maxInputPixels: 1e9, maxOutputPixels: 1e9, maxFrames: 1}
    expect(planResize(jpeg(16_383, 10), opts(1, 'webp'), wide)).to.include({width: 16_383})
    expect(refusal(() => planResize(jpeg(16_384, 10), opts(1, 'webp'), wide))).to.equal(
      'The output would be 16384x10, but webp images can be at most 16383 pixels on a side.',
    )
    expect(refusal(() => planResize(jpeg(10, 16_384), opts(1, 'webp'), wide))).to.contain('16383 pixels on a side')
  })
})

describe('resize planning with width, height and fit (contract section 5)', () => {
  const box = (width: number | null, height: number | null, fit: ResizeOptions['fit'] = 'inside'): ResizeOptions => ({
    ...scaleOptions(1),
    scaleFactor: null,
    width,
    height,
    fit,
  })
  const landscape = {width: 600, height: 450}
  const portrait = {width: 450, height: 600}

  it('one side given: the other follows the aspect ratio, whatever the fit', () => {
    for (const fit of ['inside', 'contain', 'cover', 'fill', 'outside'] as const) {
      expect(outputSize(landscape, box(300, null, fit)), fit).to.deep.equal({width: 300, height: 225})
      expect(outputSize(landscape, box(null, 100, fit)), fit).to.deep.equal({width: 133, height: 100})
      expect(outputSize(portrait, box(100, null, fit)), fit).to.deep.equal({width: 100, height: 133})
      // max(1, ...): a sliver never rounds to nothing.
      expect(outputSize({width: 5000, height: 10}, box(100, null, fit)), fit).to.deep.equal({width: 100, height: 1})
    }
  })

  it('a derived side rounds to the nearest pixel: not down, not up (issue 20)', () => {
    // 450 * 301 / 600 = 225.75 and 600 * 200 / 450 = 266.67 round up; 450 * 299 / 600 = 224.25 and 600 * 100 / 450 = 133.33 round down.
    expect(outputSize(landscape, box(301, null, 'inside'))).to.deep.equal({width: 301, height: 226})
    expect(outputSize(landscape, box(null, 200, 'inside'))).to.deep.equal({width: 267, height: 200})
    expect(outputSize(landscape, box(299, null, 'inside'))).to.deep.equal({width: 299, height: 224})
    expect(outputSize(landscape, box(null, 100, 'inside'))).to.deep.equal({width: 133, height: 100})
    // Exactly half rounds up, as Math.round and the contract's round() do.
    expect(outputSize({width: 4, height: 1}, box(2, null, 'inside'))).to.deep.equal({width: 2, height: 1})
    expect(outputSize({width: 4, height: 3}, box(2, null, 'inside'))).to.deep.equal({width: 2, height: 2})
  })

  it('both sides: fill, cover and contain give the box; inside and outside scale by the smaller or larger ratio', () => {
    for (const fit of ['fill', 'cover', 'contain'] as const) {
      expect(outputSize(landscape, box(200, 200, fit)), fit).to.deep.equal({width: 200, height: 200})
      expect(outputSize(portrait, box(300, 100, fit)), fit).to.deep.equal({width: 300, height: 100})
    }
    expect(outputSize(landscape, box(200, 200, 'inside'))).to.deep.equal({width: 200, height: 150})
    expect(outputSize(portrait, box(200, 200, 'inside'))).to.deep.equal({width: 150, height: 200})
    expect(outputSize(landscape, box(200, 200, 'outside'))).to.deep.equal({width: 267, height: 200})
    expect(outputSize(portrait, box(200, 200, 'outside'))).to.deep.equal({width: 200, height: 267})
  })

  it('tells the worker how to reach the box: cover and contain only with both sides, else an exact fill', () => {
    const input = jpeg(600, 450)
    expect(planResize(input, box(200, 200, 'cover'), LIMITS)).to.include({fit: 'cover', width: 200, height: 200})
    expect(planResize(input, box(200, 200, 'contain'), LIMITS)).to.include({fit: 'contain'})
    expect(planResize(input, box(200, null, 'cover'), LIMITS)).to.include({fit: 'fill', width: 200, height: 150})
    expect(planResize(input, box(200, 200, 'outside'), LIMITS)).to.include({fit: 'fill', width: 267, height: 200})
  })

  it('refuses a box whose output goes over the limits before any work', () => {
    expect(() => planResize(jpeg(100, 10_000), box(16_384, 16_384, 'outside'), LIMITS)).to.throw(ImgscaleError).with.property('code', 'image_too_large')
  })

  it('takes a quality for JPEG, WebP, AVIF and TIFF output and refuses it for PNG and GIF (invalid_option)', () => {
    for (const format of ['jpeg', 'webp', 'avif', 'tiff'] as const) {
      expect(planResize(jpeg(60, 40), {...opts(1, format), quality: 30}, LIMITS).quality).to.equal(30)
    }
    for (const format of ['png', 'gif'] as const) {
      expect(() => planResize(jpeg(60, 40), {...opts(1, format), quality: 30}, LIMITS)).to.throw(ImgscaleError).with.property('code', 'invalid_option')
    }
    // The input's format decides when none is asked for.
    expect(() => planResize({...jpeg(60, 40), format: 'png'}, {...opts(1), quality: 30}, LIMITS)).to.throw(ImgscaleError).with.property('code', 'invalid_option')
  })

  it('format=auto: AVIF if Accept names it, else WebP, else the input format; q=0 and wildcards name nothing', () => {
    const still = jpeg(60, 40)
    expect(negotiateFormat(acceptedFormats('image/avif,image/webp,*/*'), still)).to.equal('avif')
    expect(negotiateFormat(acceptedFormats('text/html, image/webp;q=0.8'), still)).to.equal('webp')
    expect(negotiateFormat(acceptedFormats('IMAGE/WEBP'), still)).to.equal('webp')
    expect(negotiateFormat(acceptedFormats('image/avif;q=0, image/webp'), still)).to.equal('webp')
    expect(negotiateFormat(acceptedFormats('*/*'), still)).to.equal('jpeg')
    expect(negotiateFormat(acceptedFormats('image/*'), still)).to.equal('jpeg')
    expect(negotiateFormat(acceptedFormats(undefined), still)).to.equal('jpeg')
    // An animation is never made AVIF (it would lose its frames).
    expect(negotiateFormat(acceptedFormats('image/avif, image/webp'), {format: 'gif', width: 4, height: 4, frames: 3, bytes: 1})).to.equal('webp')
    expect(planResize(still, {...opts(1), format: 'auto'}, LIMITS, acceptedFormats('image/avif')).format).to.equal('avif')
  })

  it('keep metadata is passed to the worker', () => {
    expect(planResize(jpeg(60, 40), {...opts(1), metadata: 'keep'}, LIMITS).keepMetadata).to.equal(true)
    expect(planResize(jpeg(60, 40), opts(1), LIMITS).keepMetadata).to.equal(false)
  })
})

describe('resize planning with the operations of section 10', () => {
  const box = (width: number | null, height: number | null, fit: ResizeOptions['fit'] = 'inside'): ResizeOptions => ({...scaleOptions(1), scaleFactor: null, width, height, fit})

  it('sizes from the cropped, then turned, input: every formula of section 5', () => {
    const photo = jpeg(600, 450)
    const crop = {x: 100, y: 50, width: 400, height: 200}
    expect(sourceSize(photo, {crop, rotate: 0})).to.deep.equal({width: 400, height: 200})
    expect(sourceSize(photo, {crop, rotate: 90})).to.deep.equal({width: 200, height: 400})
    expect(sourceSize(photo, {crop: null, rotate: 270})).to.deep.equal({width: 450, height: 600})
    expect(sourceSize(photo, {crop: null, rotate: 180})).to.deep.equal({width: 600, height: 450})
    const size = (options: Partial<ResizeOptions>) => {
      const plan = planResize(photo, {...scaleOptions(0.5), ...options}, LIMITS)
      return [plan.width, plan.height]
    }
    expect(size({crop})).to.deep.equal([200, 100])
    expect(size({crop, rotate: 90})).to.deep.equal([100, 200])
    expect(size({...box(100, null), crop, rotate: 90})).to.deep.equal([100, 200])
    expect(size({...box(null, 100), crop, rotate: 270})).to.deep.equal([50, 100])
    expect(size({...box(100, 100, 'inside'), crop, rotate: 90})).to.deep.equal([50, 100])
    expect(size({...box(100, 100, 'outside'), crop})).to.deep.equal([200, 100])
    expect(size({...box(100, 100, 'cover'), crop, rotate: 90})).to.deep.equal([100, 100])
    expect(size({...box(100, 100, 'contain'), crop})).to.deep.equal([100, 100])
    expect(size({...box(100, 100, 'fill'), rotate: 90})).to.deep.equal([100, 100])
    expect(size({rotate: 90, flip: true, flop: true})).to.deep.equal([225, 300])
  })

  it('a crop must lie inside the oriented input: invalid_option, before any work', () => {
    const photo = jpeg(600, 450)
    const crop = (x: number, y: number, width: number, height: number) => ({...scaleOptions(1), crop: {x, y, width, height}})
    expect(planResize(photo, crop(0, 0, 600, 450), LIMITS)).to.include({width: 600, height: 450})
    expect(planResize(photo, crop(599, 449, 1, 1), LIMITS)).to.include({width: 1, height: 1})
    for (const outside of [crop(1, 0, 600, 450), crop(0, 1, 600, 450), crop(600, 0, 1, 1), crop(0, 450, 1, 1), crop(0, 0, 601, 1)]) {
      expect(() => planResize(photo, outside, LIMITS)).to.throw(ImgscaleError).with.property('code', 'invalid_option')
    }
  })

  it('passes every operation to the worker, the background as sharp takes it', () => {
    const options = {...scaleOptions(0.5), crop: {x: 1, y: 2, width: 30, height: 40}, rotate: 180 as const, flip: true, flop: true, grayscale: true, blur: 2, sharpen: 1, background: '#ff000080'}
    expect(planResize(jpeg(600, 450), options, LIMITS)).to.deep.include({
      crop: {x: 1, y: 2, width: 30, height: 40},
      rotate: 180,
      flip: true,
      flop: true,
      grayscale: true,
      blur: 2,
      sharpen: 1,
      background: {r: 255, g: 0, b: 0, alpha: 0.502},
    })
  })

  it('plans every output of a task on its own, the input checked once', () => {
    const plans = planOutputs(jpeg(600, 450), [scaleOptions(0.5), {...scaleOptions(0.1), format: 'webp'}], LIMITS)
    expect(plans.map((plan) => [plan.format, plan.width, plan.height])).to.deep.equal([
      ['jpeg', 300, 225],
      ['webp', 60, 45],
    ])
    expect(() => planOutputs(jpeg(600, 450), [scaleOptions(0.5), scaleOptions(10)], {...LIMITS, maxOutputPixels: 1_000_000})).to.throw(ImgscaleError).with.property('code', 'image_too_large')
  })
})
