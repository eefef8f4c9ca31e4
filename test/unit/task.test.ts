import {expect} from 'chai'

import {scaleOptions} from '../../src/image/options.js'
import {PLAIN_RESIZE} from '../../src/image/plan.js'
import {fromRecord, statusBody, toRecord, type Task} from '../../src/tasks/task.js'

const task = (overrides: Partial<Task> = {}): Task => ({
  id: '01JD3Z6Q2W5N8R4T7Y9B1C3E5G',
  status: 'queued',
  options: scaleOptions(0.5),
  callback: null,
  createdAt: new Date('2026-11-30T10:00:00.000Z'),
  startedAt: null,
  finishedAt: null,
  input: {format: 'jpeg', width: 600, height: 450, frames: 1, bytes: 139_435},
  plan: {format: 'webp', width: 300, height: 225, frames: 1, ...PLAIN_RESIZE},
  output: null,
  error: null,
  ...overrides,
})

describe('the task record and the status document', () => {
  it('a record reads back as the same task, dates included, unfinished or finished', () => {
    const queued = task()
    expect(fromRecord(JSON.parse(JSON.stringify(toRecord(queued))))).to.deep.equal(queued)
    const done = task({
      status: 'done',
      startedAt: new Date('2026-11-30T10:00:00.010Z'),
      finishedAt: new Date('2026-11-30T10:00:00.050Z'),
      output: {format: 'webp', width: 300, height: 225, bytes: 9_000},
    })
    const record = JSON.parse(JSON.stringify(toRecord(done)))
    expect(record).to.include({version: 1, startedAt: '2026-11-30T10:00:00.010Z', finishedAt: '2026-11-30T10:00:00.050Z'})
    expect(fromRecord(record)).to.deep.equal(done)
  })

  it('reads a record written before options and callbacks existed as a plain scale task', () => {
    const {options: _options, callback: _callback, ...old} = JSON.parse(JSON.stringify(toRecord(task())))
    const plan = {format: 'webp', width: 300, height: 225, frames: 1}
    expect(fromRecord({...old, scaleFactor: 0.25, plan})).to.deep.include({options: scaleOptions(0.25), callback: null, plan: {...plan, ...PLAIN_RESIZE}})
  })

  it('refuses records it cannot use: another version, no id, an unknown status, no input or plan, not an object', () => {
    const good = JSON.parse(JSON.stringify(toRecord(task())))
    for (const bad of [{...good, version: 2}, {...good, id: 7}, {...good, status: 'paused'}, {...good, input: undefined}, {...good, plan: undefined}, null, 'text']) {
      expect(fromRecord(bad), JSON.stringify(bad)).to.equal(undefined)
    }
  })

  it('the status document: the contract fields, result_url only once done', () => {
    expect(statusBody(task())).to.deep.equal({
      task_id: '01JD3Z6Q2W5N8R4T7Y9B1C3E5G',
      status: 'queued',
      scale_factor: 0.5,
      options: {scale_factor: 0.5, width: null, height: null, fit: 'inside', position: 'centre', quality: null, format: null, metadata: 'strip'},
      created_at: '2026-11-30T10:00:00.000Z',
      started_at: null,
      finished_at: null,
      input: {format: 'jpeg', width: 600, height: 450, bytes: 139_435},
      output: null,
      result_url: null,
      error: null,
      callback: null,
    })
    const done = statusBody(task({status: 'done', startedAt: new Date(1), finishedAt: new Date(2), output: {format: 'webp', width: 300, height: 225, bytes: 1}}))
    expect(done).to.include({result_url: '/result/01JD3Z6Q2W5N8R4T7Y9B1C3E5G', started_at: '1970-01-01T00:00:00.001Z', finished_at: '1970-01-01T00:00:00.002Z'})
    expect(statusBody(task({status: 'failed', finishedAt: new Date(2), error: {code: 'corrupt_image', message: 'x'}})).result_url).to.equal(null)
  })
})
