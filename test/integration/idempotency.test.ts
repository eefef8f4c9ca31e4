/**
 * Retry-safe uploads (contract section 11), through the real serve, in both
 * modes: the same key answers with the same task, another request under it
 * is a conflict, concurrent duplicates make one task, and the key holds
 * across front ends and restarts. `imgscale submit` retries an upload whose
 * answer was lost, and still makes one task.
 */
import {once} from 'node:events'
import {readdirSync} from 'node:fs'
import net from 'node:net'
import path from 'node:path'

import {expect} from 'chai'

import {metric, statusOf, upload, type UploadParts} from '../helpers/api.js'
import {runCli} from '../helpers/cli.js'
import {PHOTO, readPhoto, SLOW} from '../helpers/images.js'
import {until} from '../helpers/processes.js'
import {startServe, tempDataDir, type Served} from '../helpers/serve.js'
import {endOf, startTopology, type Topology} from '../helpers/topology.js'

const IMAGE = readPhoto(PHOTO.jpeg.file)
const OTHER_IMAGE = readPhoto(PHOTO.png.file)

interface Answer {
  status: number
  body: {task_id?: string; status?: string; error?: {code: string; message: string}}
  retryAfter: string | null
  replayed: string | null
}

async function keyedUpload(url: string, key: string, parts: UploadParts = {image: IMAGE, scale: '0.5'}, query?: string, headers: Record<string, string> = {}): Promise<Answer> {
  const response = await upload(url, parts, {query, headers: {'Idempotency-Key': key, ...headers}})
  return {
    status: response.status,
    body: (await response.json()) as Answer['body'],
    retryAfter: response.headers.get('retry-after'),
    replayed: response.headers.get('idempotent-replayed'),
  }
}

/** Tasks made so far by every front end: the created uploads, summed. */
async function tasksCreated(urls: string[]): Promise<number> {
  let sum = 0
  for (const url of urls) sum += await metric(url, 'imgscale_uploads_total', '{outcome="created"}')
  return sum
}

/** What both modes must do; `urls()` gives the front ends (one in embedded mode), `restart()` restarts them on the same store. */
function sharedBehaviour(urls: () => string[], restart: () => Promise<void>): void {
  it('the same key and request: the same task, marked replayed, and no second task', async () => {
    const [first, second] = [urls()[0]!, urls().at(-1)!]
    const before = await tasksCreated(urls())
    const made = await keyedUpload(first, 'same-1')
    expect(made.status, JSON.stringify(made.body)).to.equal(202)
    expect(made.replayed).to.equal(null)
    const again = await keyedUpload(second, 'same-1')
    expect(again.status, JSON.stringify(again.body)).to.equal(202)
    expect(again.replayed).to.equal('true')
    expect(again.body.task_id).to.equal(made.body.task_id)
    expect(await tasksCreated(urls())).to.equal(before + 1)
    expect((await endOf(second, made.body.task_id!)).status).to.equal('done')
  })

  it('the same key with another image or other fields: 409 idempotency_conflict, without Retry-After', async () => {
    const url = urls()[0]!
    const made = await keyedUpload(url, 'conflict-1')
    expect(made.status).to.equal(202)
    for (const other of [{image: IMAGE, scale: '0.25'}, {image: OTHER_IMAGE, scale: '0.5'}, {image: IMAGE, scale: '0.5', format: 'webp'}]) {
      const refused = await keyedUpload(urls().at(-1)!, 'conflict-1', other)
      expect(refused.status, JSON.stringify(other)).to.equal(409)
      expect(refused.body.error?.code).to.equal('idempotency_conflict')
      expect(refused.retryAfter).to.equal(null)
    }
    // The conflicts changed nothing: the first request still gets its task.
    expect((await keyedUpload(url, 'conflict-1')).body.task_id).to.equal(made.body.task_id)
  })

  it('concurrent duplicates make one task: the others get it, or 409 with Retry-After while it is stored', async () => {
    const before = await tasksCreated(urls())
    const big = {image: readPhoto(PHOTO.jpegLarge.file), scale: '0.1'}
    const answers = await Promise.all(Array.from({length: 8}, (_, n) => keyedUpload(urls()[n % urls().length]!, 'race-1', big)))
    const accepted = answers.filter((answer) => answer.status === 202)
    expect(accepted.length, JSON.stringify(answers.map((answer) => answer.status))).to.be.greaterThan(0)
    expect(new Set(accepted.map((answer) => answer.body.task_id)).size).to.equal(1)
    for (const answer of answers.filter((one) => one.status !== 202)) {
      expect(answer.status).to.equal(409)
      expect(answer.body.error?.code).to.equal('idempotency_conflict')
      expect(answer.retryAfter).to.equal('1')
    }
    expect(await tasksCreated(urls())).to.equal(before + 1)
  })

  it('with ?wait, a retry of an ended task answers 200 with its final status', async () => {
    const url = urls()[0]!
    const made = await keyedUpload(url, 'wait-1')
    await endOf(url, made.body.task_id!)
    const again = await keyedUpload(urls().at(-1)!, 'wait-1', undefined, 'wait=5')
    expect(again.status).to.equal(200)
    expect(again.body).to.include({task_id: made.body.task_id, status: 'done'})
  })

  it('a deleted task frees its key: the next upload under it makes a new task', async () => {
    const url = urls()[0]!
    const made = await keyedUpload(url, 'delete-1')
    await endOf(url, made.body.task_id!)
    expect((await fetch(`${url}/tasks/${made.body.task_id}`, {method: 'DELETE'})).status).to.equal(204)
    const again = await keyedUpload(url, 'delete-1')
    expect(again.status).to.equal(202)
    expect(again.replayed).to.equal(null)
    expect(again.body.task_id).to.not.equal(made.body.task_id)
  })

  it('the key holds through a restart', async () => {
    const made = await keyedUpload(urls()[0]!, 'restart-1')
    expect(made.status).to.equal(202)
    await restart()
    const again = await keyedUpload(urls().at(-1)!, 'restart-1')
    expect(again.status, JSON.stringify(again.body)).to.equal(202)
    expect(again.body.task_id).to.equal(made.body.task_id)
    expect((await endOf(urls()[0]!, made.body.task_id!)).status).to.equal('done')
  })
}

describe('retry-safe uploads: Idempotency-Key (contract section 11)', function () {
  this.timeout(120_000)

  describe('embedded', () => {
    const dataDir = tempDataDir()
    let serve: Served
    before(async () => {
      serve = await startServe(['-w', '1', '--data-dir', dataDir])
    })
    after(async () => {
      await serve?.stop()
    })

    sharedBehaviour(
      () => [serve.url],
      async () => {
        // As a crash would leave it: nothing drained.
        serve.child.kill('SIGKILL')
        await serve.exited
        serve = await startServe(['-w', '1', '--data-dir', dataDir])
      },
    )

    it('a malformed key is 400 invalid_request, before any task is made', async () => {
      const before = await tasksCreated([serve.url])
      for (const bad of ['', ' ', 'has space', 'x'.repeat(256), 'tab\there', 'caf\u00e9']) {
        const refused = await keyedUpload(serve.url, bad)
        expect(refused.status, JSON.stringify(bad)).to.equal(400)
        expect(refused.body.error?.code).to.equal('invalid_request')
        expect(refused.body.error?.message).to.match(/Idempotency-Key/)
      }
      expect((await keyedUpload(serve.url, '~'.repeat(255))).status, 'the longest key').to.equal(202)
      expect(await tasksCreated([serve.url])).to.equal(before + 1)
    })

    it('a retry is answered with its task even when the queue is full', async () => {
      const full = await startServe(['-w', '1', '--inflight-per-worker', '1', '--max-queue', '0'])
      try {
        const made = await keyedUpload(full.url, 'full-1', SLOW)
        expect(made.status).to.equal(202)
        await until('the slow task to start', async () => (await statusOf(full.url, made.body.task_id!)).status === 'processing', 30_000)
        const other = await keyedUpload(full.url, 'full-2')
        expect(other.status, 'a new task is still refused').to.equal(503)
        const again = await keyedUpload(full.url, 'full-1', SLOW)
        expect(again.status).to.equal(202)
        expect(again.body.task_id).to.equal(made.body.task_id)
      } finally {
        await full.stop()
      }
    })

    it('keys are per API key: the same key under two API keys makes two tasks', async () => {
      const keyed = await startServe(['-w', '1', '--api-key', 'alpha-key-0123456789', '--api-key', 'bravo-key-0123456789'])
      try {
        const asAlpha = await keyedUpload(keyed.url, 'shared-1', undefined, undefined, {Authorization: 'Bearer alpha-key-0123456789'})
        const asBravo = await keyedUpload(keyed.url, 'shared-1', undefined, undefined, {Authorization: 'Bearer bravo-key-0123456789'})
        expect([asAlpha.status, asBravo.status]).to.deep.equal([202, 202])
        expect(asBravo.replayed).to.equal(null)
        expect(asBravo.body.task_id).to.not.equal(asAlpha.body.task_id)
        const alphaAgain = await keyedUpload(keyed.url, 'shared-1', undefined, undefined, {Authorization: 'Bearer alpha-key-0123456789'})
        expect(alphaAgain.body.task_id).to.equal(asAlpha.body.task_id)
      } finally {
        await keyed.stop()
      }
    })

    it('imgscale submit retries an upload whose answer was lost, under its key: one task, and it prints that task', async () => {
      const proxy = await AnswerCutter.start(new URL(serve.url))
      try {
        const before = await tasksCreated([serve.url])
        const run = await runCli(['submit', PHOTO.jpeg.file, '0.5', '--url', proxy.url])
        expect(run.code, run.stderr).to.equal(0)
        expect(proxy.cut, 'the first answer was cut off').to.have.length(1)
        const printed = run.stdout.trim()
        expect(printed).to.equal(proxy.cut[0])
        expect(await tasksCreated([serve.url])).to.equal(before + 1)
        expect((await endOf(serve.url, printed)).status).to.equal('done')
      } finally {
        await proxy.close()
      }
    })
  })

  describe('distributed (2 front ends, Redis)', () => {
    let topology: Topology
    const restarted: Served[] = []
    before(async () => {
      topology = await startTopology({frontEnds: 2, hosts: 1})
    })
    after(async () => {
      await Promise.all(restarted.map((frontEnd) => frontEnd.stop()))
      await topology?.close()
    })

    sharedBehaviour(
      () => topology.frontEnds.map((frontEnd) => frontEnd.url),
      async () => {
        // Every front end goes; new ones (new ports, no memory of the old) answer.
        const redisUrl = topology.redis.url
        for (const frontEnd of topology.frontEnds) {
          frontEnd.child.kill('SIGKILL')
          await frontEnd.exited
        }
        const fresh = [await startServe(['--redis', redisUrl, '-w', '0']), await startServe(['--redis', redisUrl, '-w', '0'])]
        restarted.push(...fresh)
        topology.frontEnds.splice(0, topology.frontEnds.length, ...fresh)
      },
    )
  })
})


/**
 * A TCP proxy that loses the first answer: it lets the request through and,
 * when the server's answer begins, closes both sides, keeping the task id it
 * saw. Later connections pass through untouched.
 */
class AnswerCutter {
  readonly cut: string[] = []
  private connections = 0

  private constructor(
    private readonly server: net.Server,
    readonly url: string,
  ) {}

  static async start(target: URL): Promise<AnswerCutter> {
    const server = net.createServer()
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const cutter = new AnswerCutter(server, `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`)
    server.on('connection', (client) => cutter.relay(client, target))
    return cutter
  }

  private relay(client: net.Socket, target: URL): void {
    const first = this.connections++ === 0
    const upstream = net.connect(Number(target.port), target.hostname.replace(/^\[|\]$/g, ''))
    client.on('error', () => upstream.destroy())
    upstream.on('error', () => client.destroy())
    client.pipe(upstream)
    if (!first) {
      upstream.pipe(client)
      return
    }
    let answer = ''
    upstream.on('data', (chunk: Buffer) => {
      answer += chunk.toString('latin1')
      const id = /"task_id":"([0-9A-Z]{26})"/.exec(answer)?.[1]
      if (!id) return
      this.cut.push(id)
      client.destroy()
      upstream.destroy()
    })
  }

  async close(): Promise<void> {
    this.server.close()
    await once(this.server, 'close')
  }
}

describe('a replayed upload keeps nothing (issue 29, 6)', function () {
  this.timeout(60_000)

  it('the spooled copy of a replayed upload is deleted with its request', async () => {
    const dataDir = tempDataDir()
    // Uploads over 100 KB stream to the spool on disk.
    const served = await startServe(['-w', '1', '--data-dir', dataDir, '--memory-upload-mb', '0.1'])
    try {
      const made = await keyedUpload(served.url, 'spool-1')
      expect(made.status).to.equal(202)
      for (let replay = 0; replay < 3; replay++) {
        const again = await keyedUpload(served.url, 'spool-1')
        expect([again.status, again.replayed, again.body.task_id]).to.deep.equal([202, 'true', made.body.task_id])
      }
      expect(readdirSync(path.join(dataDir, 'spool'))).to.deep.equal([])
      expect((await endOf(served.url, made.body.task_id!)).status).to.equal('done')
    } finally {
      expect(await served.stop()).to.equal(0)
    }
  })
})
