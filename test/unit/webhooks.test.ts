/**
 * The webhook parts in-process: the forgery guard's address ranges and its
 * connect-time lookup, the signature, the retry schedule of the deliverer,
 * and where the data directory keeps pending callbacks.
 */
import {createHmac} from 'node:crypto'
import path from 'node:path'

import Database from 'better-sqlite3'
import {expect} from 'chai'

import {FIXED} from '../../src/config.js'
import {TaskDb} from '../../src/tasks/task-db.js'
import {markFailed, newTask, type Task} from '../../src/tasks/task.js'
import {ImgscaleError} from '../../src/errors.js'
import {AddressGuard, parseCidr} from '../../src/net/address-guard.js'
import {CallbackDeliverer, type CallbackQueue} from '../../src/webhooks/deliverer.js'
import {postCallback} from '../../src/webhooks/post.js'
import {signature} from '../../src/webhooks/signature.js'
import {metrics, openStore, removeDir, silent, spooled, tempDir, type Opened} from '../helpers/in-process.js'
import {until} from '../helpers/processes.js'
import {Receiver} from '../helpers/receiver.js'

describe('the forgery guard', () => {
  const guard = new AddressGuard()

  it('permits public addresses and refuses loopback, private, link-local, multicast and reserved ones', () => {
    for (const address of ['93.184.215.14', '8.8.8.8', '2606:4700::1111', '2a00:1450:4007:80e::200e']) expect(guard.permits(address), address).to.equal(true)
    const refused = [
      '127.0.0.1', '127.255.255.254', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.0.1', '169.254.169.254', '100.64.0.1',
      '0.0.0.0', '224.0.0.1', '239.255.255.250', '255.255.255.255', '198.18.0.1',
      '::1', '::', 'fe80::1', 'fd12:3456::1', 'fc00::1', 'ff02::1', 'fec0::1', '2001:db8::1',
      // IPv4 inside IPv6: mapped, NAT64, 6to4, and the deprecated compatible form.
      '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:10.0.0.1', '64:ff9b::10.0.0.1', '2002:7f00:1::1', '::127.0.0.1',
    ]
    for (const address of refused) expect(guard.permits(address), address).to.equal(false)
    // Mapped public addresses are public.
    expect(guard.permits('::ffff:8.8.8.8')).to.equal(true)
    expect(guard.permits('64:ff9b::808:808')).to.equal(true)
    // 172.32/12 is outside 172.16/12.
    expect(guard.permits('172.32.0.1')).to.equal(true)
  })

  // Issue 20: every range the guard refuses, one at a time: an address inside it, and the public one just past it.
  const RANGES: Array<[range: string, inside: string, justOutside: string | null]> = [
    ['0.0.0.0/8', '0.255.255.255', '1.0.0.0'],
    ['10.0.0.0/8', '10.255.255.255', '11.0.0.0'],
    ['100.64.0.0/10', '100.127.255.255', '100.128.0.0'],
    ['127.0.0.0/8', '127.0.0.2', '128.0.0.0'],
    ['169.254.0.0/16', '169.254.0.1', '169.255.0.0'],
    ['172.16.0.0/12', '172.16.0.0', '172.32.0.0'],
    ['192.0.0.0/24', '192.0.0.170', '192.0.1.0'],
    ['192.0.2.0/24', '192.0.2.1', '192.0.3.0'],
    ['192.168.0.0/16', '192.168.255.255', '192.169.0.0'],
    ['198.18.0.0/15', '198.19.255.255', '198.20.0.0'],
    ['198.51.100.0/24', '198.51.100.7', '198.51.101.0'],
    ['203.0.113.0/24', '203.0.113.200', '203.0.114.0'],
    ['224.0.0.0/4', '239.1.2.3', null],
    ['240.0.0.0/4', '250.0.0.1', null],
    ['::/96 (IPv4-compatible)', '::10.0.0.1', null],
    ['100::/64 (discard)', '100::1', '100:0:0:1::1'],
    ['2001::/32 (Teredo)', '2001:0:4136:e378:8000:63bf:3fff:fdd2', '2001:1::1'],
    ['2001:db8::/32 (documentation)', '2001:db8:ffff::1', '2001:db9::1'],
    ['2002::/16 (6to4)', '2002:808:808::1', '2003::1'],
    ['fc00::/7 (unique local)', 'fdff::1', 'fe00::1'],
    ['fe80::/10 (link-local)', 'febf::1', null],
    ['fec0::/10 (site-local)', 'feff::1', null],
    ['ff00::/8 (multicast)', 'ff0e::1', null],
  ]
  for (const [range, inside, justOutside] of RANGES) {
    it(`refuses ${range}: ${inside}${justOutside ? `, not ${justOutside}` : ''}`, () => {
      expect(guard.permits(inside), inside).to.equal(false)
      if (justOutside) expect(guard.permits(justOutside), justOutside).to.equal(true)
    })
  }

  it('refuses a host that resolves to a public and a private address, naming the private one (issue 20)', async () => {
    const twoFaced = new AddressGuard([], async () => [
      {address: '93.184.215.14', family: 4},
      {address: '10.0.0.7', family: 4},
    ])
    const error = (await twoFaced.check('https://mixed.example/hook').catch((thrown: unknown) => thrown)) as ImgscaleError
    expect(error).to.be.instanceOf(ImgscaleError)
    expect(error.code).to.equal('invalid_callback_url')
    expect(error.message).to.contain('10.0.0.7')
    const onlyPublic = new AddressGuard([], async () => [{address: '93.184.215.14', family: 4}])
    await onlyPublic.check('https://public.example/hook')
  })

  it('--webhook-allow opens exactly its ranges', () => {
    const allowing = new AddressGuard(['127.0.0.1/32', '10.0.0.0/8', 'fd00::/8'])
    expect(['127.0.0.1', '10.200.0.1', 'fd00::5', '::ffff:127.0.0.1'].map((a) => allowing.permits(a))).to.deep.equal([true, true, true, true])
    expect(['127.0.0.2', '192.168.0.1', '::1', 'fe80::1'].map((a) => allowing.permits(a))).to.deep.equal([false, false, false, false])
  })

  it('a CIDR is parsed strictly', () => {
    expect(parseCidr('10.0.0.0/8')).to.deep.equal({address: '10.0.0.0', prefix: 8, family: 'ipv4'})
    expect(parseCidr('::1')).to.deep.equal({address: '::1', prefix: 128, family: 'ipv6'})
    for (const bad of ['10.0.0.0/33', '::1/129', 'localhost', '10.0.0.0/8/1', '10.0.0.0/', '10.0.0/8', '10.0.0.0/-1', '']) {
      expect(() => parseCidr(bad), bad).to.throw(/Expected an address range/)
    }
  })

  it('at connect time, a name is resolved again and only permitted addresses are used', async () => {
    const lookup = (g: AddressGuard, all: boolean): Promise<unknown> =>
      new Promise((resolve, reject) => g.lookup('localhost', {all}, (error, address) => (error ? reject(error) : resolve(address))))
    const refused = await lookup(guard, true).catch((error: NodeJS.ErrnoException) => error)
    expect(refused).to.have.property('code', 'EFORBIDDENADDRESS')
    const allowing = new AddressGuard(['127.0.0.0/8'])
    expect(await lookup(allowing, false)).to.equal('127.0.0.1')
    expect(await lookup(allowing, true)).to.deep.equal([{address: '127.0.0.1', family: 4}])
  })

  it('a name resolving to a public and a loopback address (DNS rebinding) connects only to the public one, with {all: true} too (issue 29, 12)', async () => {
    const rebinding = async () => [
      {address: '127.0.0.1', family: 4},
      {address: '93.184.216.34', family: 4},
      {address: '::1', family: 6},
    ]
    const mixed = new AddressGuard([], rebinding)
    const lookup = (all: boolean): Promise<unknown> =>
      new Promise((resolve, reject) => mixed.lookup('rebind.example', {all}, (error, address) => (error ? reject(error) : resolve(address))))
    expect(await lookup(true)).to.deep.equal([{address: '93.184.216.34', family: 4}])
    expect(await lookup(false)).to.equal('93.184.216.34')
  })
})

describe('one try of a callback (postCallback)', () => {
  let receiver: Receiver
  before(async () => {
    receiver = await Receiver.start()
  })
  after(async () => {
    await receiver.stop()
  })

  it('signs "<timestamp>.<body>" with HMAC-SHA256', () => {
    const expected = createHmac('sha256', 'key').update('1700000000.{"a":1}').digest('hex')
    expect(signature('key', 1_700_000_000, '{"a":1}')).to.equal(`sha256=${expected}`)
  })

  it('never connects where the guard refuses, by name or by address: the receiver gets nothing', async () => {
    const guard = new AddressGuard()
    const byName = await postCallback(`http://localhost:${receiver.port}/x`, 'T', '{}', '', guard, {timeoutMs: 2_000})
    expect(byName).to.match(/resolves only to addresses the server may not reach/)
    const byAddress = await postCallback(receiver.url('/x'), 'T', '{}', '', guard, {timeoutMs: 2_000})
    expect(byAddress).to.equal('127.0.0.1 is not an address callbacks may reach')
    expect(receiver.received).to.have.length(0)
  })

  it('sends no signature header without a secret; 2xx is delivered, anything else says what came back', async () => {
    const guard = new AddressGuard(['127.0.0.1/32'])
    expect(await postCallback(receiver.url('/plain'), 'T', '{}', '', guard, {timeoutMs: 2_000})).to.equal(null)
    expect(receiver.requestsTo('/plain')[0]!.headers).not.to.have.property('x-imgscale-signature')
    receiver.answer('/teapot', {status: 418})
    expect(await postCallback(receiver.url('/teapot'), 'T', '{}', '', guard, {timeoutMs: 2_000})).to.equal('answered 418')
    receiver.answer('/late', {status: 200, delayMs: 1_000})
    expect(await postCallback(receiver.url('/late'), 'T', '{}', '', guard, {timeoutMs: 300})).to.equal('no answer within 0.3 s')
  })
})

describe('the callback deliverer', () => {
  let root: string
  beforeEach(() => (root = tempDir()))
  afterEach(() => removeDir(root))

  it('tries at once, then after the backoff doubling each time, and gives up after FIXED.webhookAttempts tries', async () => {
    const receiver = await Receiver.start()
    receiver.answer('/down', {status: 500})
    const {outputs, callbackUrl: _none, input} = spooled({spool: root})
    const task = newTask({outputs, input, callbackUrl: receiver.url('/down')})
    markFailed(task, {code: 'corrupt_image', message: 'bad'})
    const saved: Array<{attempts: number; state: string; delay: number | null}> = []
    const queue: CallbackQueue = {
      async due(now, _limit, skip) {
        return !skip.has(task.id) && task.callback!.nextAttemptAt !== null && task.callback!.nextAttemptAt <= now ? [task] : []
      },
      async saveCallback(t) {
        const c = t.callback!
        saved.push({attempts: c.attempts, state: c.state, delay: c.nextAttemptAt === null ? null : c.nextAttemptAt - Date.now()})
      },
    }
    const deliverer = new CallbackDeliverer(queue, new AddressGuard(['127.0.0.1/32']), {secret: '', backoffMs: 100}, metrics(), silent)
    deliverer.start()
    try {
      await until('the deliverer to give up', () => task.callback!.state === 'failed', 20_000)
    } finally {
      deliverer.stop()
      await receiver.stop()
    }
    expect(saved.map((s) => [s.attempts, s.state])).to.deep.equal(
      Array.from({length: FIXED.webhookAttempts}, (_, i) => [i + 1, i + 1 === FIXED.webhookAttempts ? 'failed' : 'pending']),
    )
    // The delays: 100, 200, 400, 800, 1600 ms (within the time the save took), then none.
    saved.slice(0, -1).forEach((s, i) => expect(s.delay!, `delay after try ${i + 1}`).to.be.within(100 * 2 ** i - 50, 100 * 2 ** i))
    expect(saved.at(-1)!.delay).to.equal(null)
    expect(receiver.requestsTo('/down')).to.have.length(FIXED.webhookAttempts)
  })

  it(`never has more than FIXED.webhookConcurrency (${FIXED.webhookConcurrency}) tries out at once, with more callbacks due (issue 20)`, async () => {
    const receiver = await Receiver.start()
    receiver.answer('/slow', {status: 200, delayMs: 1_500})
    const {outputs, input} = spooled({spool: root})
    const tasks = Array.from({length: FIXED.webhookConcurrency + 4}, () => {
      const task = newTask({outputs, input, callbackUrl: receiver.url('/slow')})
      markFailed(task, {code: 'corrupt_image', message: 'bad'})
      return task
    })
    const asked: number[] = []
    const queue: CallbackQueue = {
      async due(now, limit, skip) {
        asked.push(limit)
        return tasks.filter((t) => !skip.has(t.id) && t.callback!.nextAttemptAt !== null && t.callback!.nextAttemptAt <= now).slice(0, limit)
      },
      async saveCallback() {},
    }
    const deliverer = new CallbackDeliverer(queue, new AddressGuard(['127.0.0.1/32']), {secret: '', backoffMs: 100}, metrics(), silent)
    deliverer.start()
    try {
      await until('the first tries to arrive', () => receiver.requestsTo('/slow').length >= FIXED.webhookConcurrency, 5_000)
      // While those are held (each answer waits 1.5 s), no further try goes out.
      await new Promise((resolve) => setTimeout(resolve, 500))
      expect(receiver.requestsTo('/slow')).to.have.length(FIXED.webhookConcurrency)
      await until('every callback to be delivered', () => tasks.every((t) => t.callback!.state === 'delivered'), 10_000)
    } finally {
      deliverer.stop()
      await receiver.stop()
    }
    expect(receiver.requestsTo('/slow')).to.have.length(tasks.length)
    expect(Math.max(...asked)).to.be.at.most(FIXED.webhookConcurrency)
  })
})

describe('pending callbacks in the data directory', () => {
  let root: string
  let opened: Opened
  beforeEach(async () => {
    root = tempDir()
    opened = await openStore(root, 50)
  })
  afterEach(async () => {
    await opened.close().catch(() => undefined)
    removeDir(root)
  })

  const endWithCallback = async (): Promise<Task> => {
    const task = await opened.store.accept({...spooled(opened.dir), callbackUrl: 'https://example.com/hook'})
    opened.store.start(task)
    await opened.store.finish(task, {header: {id: task.id, outputs: [{format: 'jpeg', width: 300, height: 225, bytes: 6}]}, body: Buffer.from('result')})
    return task
  }

  it('a task that ends with a callback is due at once; a saved try moves it; forgetting the task drops it', async () => {
    const task = await endWithCallback()
    const [due] = await opened.store.due(Date.now(), 10, new Set())
    expect(due).to.deep.include({id: task.id, status: 'done'})
    expect(due!.callback).to.include({state: 'pending', attempts: 0})
    expect(await opened.store.due(Date.now(), 10, new Set([task.id])), 'not the ones being delivered').to.have.length(0)

    due!.callback!.attempts = 1
    due!.callback!.nextAttemptAt = Date.now() + 60_000
    await opened.store.saveCallback(due!)
    expect(await opened.store.due(Date.now(), 10, new Set())).to.have.length(0)
    expect((await opened.store.due(Date.now() + 61_000, 10, new Set()))[0]!.callback!.attempts).to.equal(1)

    await opened.store.forget(due!)
    expect(await opened.store.due(Date.now() + 61_000, 10, new Set())).to.have.length(0)
    // A save after the task was forgotten does not bring it back.
    await opened.store.saveCallback(due!)
    expect(opened.store.get(task.id)).to.equal(undefined)
    expect(opened.dir.db.size).to.equal(0)
  })

  it('expiry waits for a pending callback: the task goes only once its delivery has ended', async () => {
    const task = await endWithCallback()
    await new Promise((resolve) => setTimeout(resolve, 60))
    expect(await opened.store.sweep()).to.equal(0)
    expect(opened.store.get(task.id), 'past its retention it is not answered').to.equal(undefined)
    const [due] = await opened.store.due(Date.now(), 10, new Set())
    due!.callback!.state = 'delivered'
    due!.callback!.nextAttemptAt = null
    await opened.store.saveCallback(due!)
    expect(await opened.store.sweep()).to.equal(1)
  })

  it('a database made before callbacks existed gets the column, and its tasks read as having none', async () => {
    await opened.close()
    const file = path.join(root, 'old.db')
    const old = new Database(file)
    old.exec('CREATE TABLE tasks (id TEXT PRIMARY KEY, finished_at INTEGER, record TEXT NOT NULL) WITHOUT ROWID')
    old.prepare('INSERT INTO tasks VALUES (?, ?, ?)').run('OLD', 1, '{}')
    old.close()
    const db = new TaskDb(file, false)
    try {
      expect(db.get('OLD')).to.equal('{}')
      expect(db.callbacksDue(Date.now(), 10)).to.deep.equal([])
      await db.put({id: 'NEW', finishedAt: 1, record: '{"n":1}', callbackDue: 5})
      expect(db.callbacksDue(10, 10)).to.deep.equal(['{"n":1}'])
    } finally {
      await db.close()
    }
  })
})
