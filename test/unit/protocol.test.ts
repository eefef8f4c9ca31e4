import {expect} from 'chai'

import {PLAIN_RESIZE} from '../../src/image/plan.js'
import {encodeFrame, encodeFrameHead, FrameDecoder, FrameError, FrameType, PREFIX_BYTES, type Frame} from '../../src/protocol/frame.js'
import {parseJob, parseReply, splitImages} from '../../src/protocol/messages.js'

const LIMITS = {maxHeaderBytes: 1024, maxBodyBytes: 1_000_000}

function decodeAll(chunks: Buffer[], limits = LIMITS): Frame[] {
  const frames: Frame[] = []
  const decoder = new FrameDecoder(limits, (frame) => frames.push(frame))
  for (const chunk of chunks) decoder.push(chunk)
  return frames
}

const plan = {format: 'jpeg', width: 10, height: 20, frames: 1}
const job = {id: '01JD3Z6Q2W5N8R4T7Y9B1C3E5G', outputs: [plan]}
const body = Buffer.from(Array.from({length: 5000}, (_, i) => i % 251))

describe('protocol: frame codec', () => {
  it('round-trips a frame', () => {
    const [frame] = decodeAll([Buffer.concat(encodeFrame(FrameType.Job, job, body))])
    expect(frame!.type).to.equal(FrameType.Job)
    expect(frame!.header).to.deep.equal(job)
    expect(frame!.body.equals(body)).to.equal(true)
  })

  it('round-trips a frame with an empty body', () => {
    const [frame] = decodeAll([Buffer.concat(encodeFrame(FrameType.Error, {id: null, code: 'timeout', message: 'm'}))])
    expect(frame!.body.length).to.equal(0)
  })

  it('reassembles a frame split into one-byte chunks', () => {
    const bytes = Buffer.concat(encodeFrame(FrameType.Job, job, body))
    const chunks = Array.from(bytes, (byte) => Buffer.from([byte]))
    const frames = decodeAll(chunks)
    expect(frames).to.have.length(1)
    expect(frames[0]!.body.equals(body)).to.equal(true)
  })

  it('splits coalesced frames, including one cut across chunks', () => {
    const a = Buffer.concat(encodeFrame(FrameType.Result, {n: 1}, Buffer.from('first')))
    const b = Buffer.concat(encodeFrame(FrameType.Result, {n: 2}, Buffer.from('second')))
    const c = Buffer.concat(encodeFrame(FrameType.Result, {n: 3}, Buffer.from('third')))
    const all = Buffer.concat([a, b, c])
    const cut = a.length + b.length + 5
    const frames = decodeAll([all.subarray(0, cut), all.subarray(cut)])
    expect(frames.map((f) => f.header.n)).to.deep.equal([1, 2, 3])
    expect(frames.map((f) => f.body.toString())).to.deep.equal(['first', 'second', 'third'])
  })

  it('waits for the rest of a partial frame without emitting', () => {
    const bytes = Buffer.concat(encodeFrame(FrameType.Job, job, body))
    const frames: Frame[] = []
    const decoder = new FrameDecoder(LIMITS, (frame) => frames.push(frame))
    decoder.push(bytes.subarray(0, bytes.length - 1))
    expect(frames).to.have.length(0)
    decoder.push(bytes.subarray(bytes.length - 1))
    expect(frames).to.have.length(1)
  })

  const refusals: Array<[string, () => Buffer, string]> = [
    ['bad magic bytes', () => Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), 'bad_magic'],
    ['an unknown version', () => withByte(2, 9), 'bad_version'],
    ['an unknown frame type', () => withByte(3, 77), 'bad_type'],
    ['a header over the limit', () => encodeFrameHead(FrameType.Job, {pad: 'x'.repeat(2000)}, 0), 'header_too_large'],
    ['a body over the limit (before its bytes arrive)', () => encodeFrameHead(FrameType.Job, job, 2_000_000).subarray(0, PREFIX_BYTES), 'body_too_large'],
    ['a header that is not JSON', () => rawFrame(Buffer.from('{nope')), 'bad_header'],
    ['a header that is a JSON array', () => rawFrame(Buffer.from('[1,2]')), 'bad_header'],
  ]
  for (const [what, make, reason] of refusals) {
    it(`refuses ${what}`, () => {
      expect(() => decodeAll([make()])).to.throw(FrameError).with.property('reason', reason)
    })
  }

  it('is spent after a refusal', () => {
    const decoder = new FrameDecoder(LIMITS, () => {})
    expect(() => decoder.push(Buffer.alloc(PREFIX_BYTES))).to.throw(FrameError)
    expect(() => decoder.push(Buffer.concat(encodeFrame(FrameType.Job, job, body)))).to.throw(FrameError)
  })
})

describe('protocol: messages', () => {
  const frame = (type: FrameType, header: Record<string, unknown>, bytes = Buffer.alloc(0)): Frame => ({type, header, body: bytes})

  it('reads a valid job header; a plan without options is a plain exact-size resize', () => {
    expect(parseJob(frame(FrameType.Job, job))).to.deep.equal({id: job.id, outputs: [{...plan, ...PLAIN_RESIZE}]})
    const boxed = {...plan, ...PLAIN_RESIZE, fit: 'cover', position: 'attention', quality: 60, keepMetadata: true}
    expect(parseJob(frame(FrameType.Job, {id: 'b', outputs: [boxed]}))).to.deep.equal({id: 'b', outputs: [boxed]})
  })

  it('reads every operation and several outputs, in order', () => {
    const shaped = {
      ...plan,
      ...PLAIN_RESIZE,
      crop: {x: 0, y: 3, width: 4, height: 5},
      rotate: 270,
      flip: true,
      flop: true,
      grayscale: true,
      blur: 0.3,
      sharpen: 10,
      background: {r: 255, g: 0, b: 16, alpha: 0.5},
    }
    const second = {...plan, ...PLAIN_RESIZE, format: 'webp', width: 3}
    expect(parseJob(frame(FrameType.Job, {id: 'c', outputs: [shaped, second]})).outputs).to.deep.equal([shaped, second])
  })

  const badPlans: Array<[string, Record<string, unknown>]> = [
    ['an unknown format', {...plan, format: 'svg'}],
    ['a zero width', {...plan, width: 0}],
    ['a fractional height', {...plan, height: 1.5}],
    ['an unknown fit', {...plan, fit: 'inside'}],
    ['an unknown position', {...plan, position: 'middle'}],
    ['a quality of 0', {...plan, quality: 0}],
    ['a quality over 100', {...plan, quality: 101}],
    ['a quality that is text', {...plan, quality: '80'}],
    ['a string size', {...plan, width: '10'}],
    ['a crop with a negative corner', {...plan, crop: {x: -1, y: 0, width: 1, height: 1}}],
    ['a crop of zero width', {...plan, crop: {x: 0, y: 0, width: 0, height: 1}}],
    ['a crop that is text', {...plan, crop: '0,0,1,1'}],
    ['a rotation of 45', {...plan, rotate: 45}],
    ['a blur under 0.3', {...plan, blur: 0.2}],
    ['a sharpen over 10', {...plan, sharpen: 11}],
    ['a background channel over 255', {...plan, background: {r: 256, g: 0, b: 0, alpha: 1}}],
    ['a background alpha over 1', {...plan, background: {r: 0, g: 0, b: 0, alpha: 2}}],
  ]
  for (const [what, header] of badPlans) {
    it(`refuses a job with ${what}`, () => {
      expect(() => parseJob(frame(FrameType.Job, {id: 'x', outputs: [header]}))).to.throw(FrameError).with.property('reason', 'bad_header')
    })
  }

  const badJobs: Array<[string, Record<string, unknown>]> = [
    ['a missing id', {...job, id: undefined}],
    ['no outputs', {id: 'x'}],
    ['an empty outputs list', {id: 'x', outputs: []}],
    ['17 outputs', {id: 'x', outputs: Array.from({length: 17}, () => plan)}],
    ['an output that is not an object', {id: 'x', outputs: [plan, 'thumb']}],
    ['the plan in the header itself, not in outputs', {id: 'x', ...plan}],
  ]
  for (const [what, header] of badJobs) {
    it(`refuses a job with ${what}`, () => {
      expect(() => parseJob(frame(FrameType.Job, header))).to.throw(FrameError).with.property('reason', 'bad_header')
    })
  }

  it('carries the request for an acknowledgement only when a job asks for one (issue 20)', () => {
    expect(parseJob(frame(FrameType.Job, job, body))).to.not.have.property('ack')
    expect(parseJob(frame(FrameType.Job, {...job, ack: true}, body))).to.include({ack: true})
  })

  it('refuses a reply frame where a job is expected', () => {
    expect(() => parseJob(frame(FrameType.Result, job))).to.throw(FrameError).with.property('reason', 'bad_type')
  })

  it('reads result and error replies, defaulting an unknown error code to internal', () => {
    const result = parseReply(frame(FrameType.Result, {id: 'a', outputs: [{format: 'png', width: 3, height: 4, bytes: 1}]}, Buffer.from('x')))
    expect(result).to.deep.include({type: FrameType.Result, header: {id: 'a', outputs: [{format: 'png', width: 3, height: 4, bytes: 1}]}})
    const error = parseReply(frame(FrameType.Error, {id: null, code: 'made_up', message: 'why'}))
    expect(error).to.deep.equal({type: FrameType.Error, header: {id: null, code: 'internal', message: 'why'}})
  })

  it('refuses a result whose sizes are not its body length: every result carries its bytes (issue 19)', () => {
    const image = (bytes: number) => ({format: 'png', width: 3, height: 4, bytes})
    expect(() => parseReply(frame(FrameType.Result, {id: 'a', outputs: [image(2)]}, Buffer.from('x')))).to.throw(FrameError)
    expect(() => parseReply(frame(FrameType.Result, {id: 'a', outputs: [image(1), image(1)]}, Buffer.from('x')))).to.throw(FrameError)
    // What a worker that saved the file itself used to send: a size, no bytes.
    expect(() => parseReply(frame(FrameType.Result, {id: 'a', outputs: [image(5000)], stored: true}))).to.throw(FrameError)
  })

  it('cuts a result of several outputs into its images, in order', () => {
    const header = {id: 'a', outputs: [3, 0 + 1, 2].map((bytes) => ({format: 'png' as const, width: 1, height: 1, bytes}))}
    const reply = parseReply(frame(FrameType.Result, header, Buffer.from('aaabcc')))
    expect(reply.type === FrameType.Result && splitImages(reply.header, reply.body).map(String)).to.deep.equal(['aaa', 'b', 'cc'])
  })
})

function withByte(offset: number, value: number): Buffer {
  const bytes = Buffer.concat(encodeFrame(FrameType.Job, job, body))
  bytes[offset] = value
  return bytes
}

function rawFrame(header: Buffer): Buffer {
  const head = encodeFrameHead(FrameType.Job, {}, 0)
  head.writeUInt32BE(header.length, 4)
  return Buffer.concat([head.subarray(0, PREFIX_BYTES), header])
}
