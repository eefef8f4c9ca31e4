import {expect} from 'chai'

import {DEFAULT_OPTIONS, scaleOptions} from '../../src/image/options.js'
import {PLAIN_RESIZE} from '../../src/image/plan.js'
import {fromRecord, markFetched, statusBody, toRecord, type Task} from '../../src/tasks/task.js'

const PLAN = {format: 'webp', width: 300, height: 225, frames: 1, ...PLAIN_RESIZE} as const

const task = (overrides: Partial<Task> = {}): Task => ({
  id: '01JD3Z6Q2W5N8R4T7Y9B1C3E5G',
  status: 'queued',
  imageUrl: null,
  accepted: [],
  callback: null,
  createdAt: new Date('2026-11-30T10:00:00.000Z'),
  startedAt: null,
  finishedAt: null,
  input: {format: 'jpeg', width: 600, height: 450, frames: 1, bytes: 139_435},
  outputs: [{options: scaleOptions(0.5), plan: PLAN, result: null}],
  error: null,
  ...overrides,
})

const OPTIONS_BODY = {
  scale_factor: 0.5,
  width: null,
  height: null,
  fit: 'inside',
  position: 'centre',
  quality: null,
  format: null,
  metadata: 'strip',
  crop: null,
  rotate: 0,
  flip: false,
  flop: false,
  grayscale: false,
  blur: null,
  sharpen: null,
  background: null,
  preset: null,
}

describe('the task record and the status document', () => {
  it('a record reads back as the same task, dates included, unfinished or finished', () => {
    const queued = task()
    expect(fromRecord(JSON.parse(JSON.stringify(toRecord(queued))))).to.deep.equal(queued)
    const done = task({
      status: 'done',
      startedAt: new Date('2026-11-30T10:00:00.010Z'),
      finishedAt: new Date('2026-11-30T10:00:00.050Z'),
      outputs: [{options: scaleOptions(0.5), plan: PLAN, result: {format: 'webp', width: 300, height: 225, bytes: 9_000}}],
    })
    const record = JSON.parse(JSON.stringify(toRecord(done)))
    expect(record).to.include({version: 1, startedAt: '2026-11-30T10:00:00.010Z', finishedAt: '2026-11-30T10:00:00.050Z'})
    expect(fromRecord(record)).to.deep.equal(done)
  })

  it('reads a record of one output (before several existed) and one written before options and callbacks existed', () => {
    const {outputs: _outputs, imageUrl: _url, accepted: _accepted, ...current} = JSON.parse(JSON.stringify(toRecord(task())))
    const output = {format: 'webp', width: 300, height: 225, bytes: 9}
    const beforeOperations = {scaleFactor: 0.5, width: null, height: null, fit: 'inside', position: 'centre', quality: null, format: null, metadata: 'strip'}
    const oneOutput = fromRecord({...current, options: beforeOperations, plan: PLAN, output})
    expect(oneOutput?.outputs).to.deep.equal([{options: scaleOptions(0.5), plan: PLAN, result: output}])
    expect(oneOutput).to.include({imageUrl: null})
    const {callback: _callback, ...old} = current
    const plan = {format: 'webp', width: 300, height: 225, frames: 1}
    expect(fromRecord({...old, scaleFactor: 0.25, plan})).to.deep.include({outputs: [{options: scaleOptions(0.25), plan: {...plan, ...PLAIN_RESIZE}, result: null}], callback: null})
  })

  it('refuses records it cannot use: another version, no id, an unknown status, no image, no outputs, not an object', () => {
    const good = JSON.parse(JSON.stringify(toRecord(task())))
    for (const bad of [{...good, version: 2}, {...good, id: 7}, {...good, status: 'paused'}, {...good, input: undefined}, {...good, outputs: undefined}, {...good, outputs: []}, null, 'text']) {
      expect(fromRecord(bad), JSON.stringify(bad)).to.equal(undefined)
    }
  })

  it('the status document: the contract fields, result_url only once done', () => {
    expect(statusBody(task())).to.deep.equal({
      task_id: '01JD3Z6Q2W5N8R4T7Y9B1C3E5G',
      status: 'queued',
      scale_factor: 0.5,
      options: OPTIONS_BODY,
      image_url: null,
      created_at: '2026-11-30T10:00:00.000Z',
      started_at: null,
      finished_at: null,
      input: {format: 'jpeg', width: 600, height: 450, bytes: 139_435},
      output: null,
      result_url: null,
      outputs: [{index: 0, options: OPTIONS_BODY, format: 'webp', width: 300, height: 225, bytes: null, result_url: null}],
      error: null,
      callback: null,
    })
    const done = statusBody(task({status: 'done', startedAt: new Date(1), finishedAt: new Date(2), outputs: [{options: scaleOptions(0.5), plan: PLAN, result: {format: 'webp', width: 300, height: 225, bytes: 1}}]}))
    expect(done).to.include({result_url: '/result/01JD3Z6Q2W5N8R4T7Y9B1C3E5G', started_at: '1970-01-01T00:00:00.001Z', finished_at: '1970-01-01T00:00:00.002Z'})
    expect(done.outputs[0]).to.include({bytes: 1, result_url: '/result/01JD3Z6Q2W5N8R4T7Y9B1C3E5G/0'})
    expect(statusBody(task({status: 'failed', finishedAt: new Date(2), error: {code: 'corrupt_image', message: 'x'}})).result_url).to.equal(null)
  })

  it('several outputs: each listed with its options, its planned size before the end, bytes and URL once done', () => {
    const small = {...PLAN, width: 30, height: 22}
    const several = task({
      outputs: [
        {options: scaleOptions(0.5), plan: PLAN, result: null},
        {options: {...DEFAULT_OPTIONS, scaleFactor: null, width: 30, height: null, format: 'png'}, plan: {...small, format: 'png'}, result: null},
      ],
    })
    expect(statusBody(several).outputs.map((output) => [output.index, output.format, output.width, output.bytes, output.result_url])).to.deep.equal([
      [0, 'webp', 300, null, null],
      [1, 'png', 30, null, null],
    ])
    several.status = 'done'
    several.outputs[0]!.result = {format: 'webp', width: 300, height: 225, bytes: 10}
    several.outputs[1]!.result = {format: 'png', width: 30, height: 22, bytes: 20}
    const body = statusBody(several)
    expect(body.output).to.deep.equal({format: 'webp', width: 300, height: 225, bytes: 10})
    expect(body.outputs.map((output) => [output.bytes, output.result_url])).to.deep.equal([
      [10, `/result/${several.id}/0`],
      [20, `/result/${several.id}/1`],
    ])
  })

  it('an image_url task: no input nor sizes until fetched, then both', () => {
    const fetching = task({imageUrl: 'https://example.com/a.jpg', input: null, outputs: [{options: scaleOptions(0.5), plan: null, result: null}]})
    expect(fromRecord(JSON.parse(JSON.stringify(toRecord(fetching))))).to.deep.equal(fetching)
    expect(statusBody(fetching)).to.include({image_url: 'https://example.com/a.jpg', input: null})
    expect(statusBody(fetching).outputs[0]).to.include({format: null, width: null, height: null})
    markFetched(fetching, {format: 'jpeg', width: 600, height: 450, frames: 1, bytes: 5}, [PLAN])
    expect(statusBody(fetching).input).to.deep.equal({format: 'jpeg', width: 600, height: 450, bytes: 5})
    expect(statusBody(fetching).outputs[0]).to.include({format: 'webp', width: 300, height: 225})
  })
})
