/**
 * Contract section 8's promises under real faults, on the real topology
 * (two front ends, two worker hosts, one redis-server): SIGKILL of a worker
 * host's whole process tree or of a front end mid-burst, Redis frozen
 * (SIGSTOP/SIGCONT), and Redis restarted on its append-only file. Every task
 * that got a 202 ends done and its result downloads.
 */
import {expect} from 'chai'

import {expectError, metric, upload} from '../helpers/api.js'
import {PHOTO, readPhoto} from '../helpers/images.js'
import {logLines} from '../helpers/logs.js'
import {delay, until, workerPids} from '../helpers/processes.js'
import {endOf, expectResult, startTopology, type Topology} from '../helpers/topology.js'

/** Stall detection every 2 s: a lost host's jobs run elsewhere within a few seconds. */
const STALL_INTERVAL = 2

const health = async (url: string): Promise<{status: number; body: Record<string, unknown>}> => {
  const response = await fetch(`${url}/healthz`)
  return {status: response.status, body: (await response.json()) as Record<string, unknown>}
}

/** Uploads `count` photos through `url`, `concurrency` at a time; the ids of those that got a 202 (bounded in count). */
async function burst(url: string, count: number, {concurrency = 4, scale = '0.5', onAccepted = (_id: string): void => {}} = {}): Promise<string[]> {
  const accepted: string[] = []
  let next = 0
  const image = readPhoto(PHOTO.jpegLarge.file)
  await Promise.all(
    Array.from({length: concurrency}, async () => {
      while (next < count) {
        next++
        const response = await upload(url, {image, scale}).catch(() => undefined)
        if (response?.status !== 202) {
          await response?.body?.cancel()
          continue
        }
        const {task_id: id} = (await response.json()) as {task_id: string}
        accepted.push(id)
        onAccepted(id)
      }
    }),
  )
  return accepted
}

async function expectAllDone(url: string, ids: string[]): Promise<void> {
  for (const id of ids) await expectResult(url, await endOf(url, id, 90_000))
}

describe('distributed mode under faults', function () {
  this.timeout(180_000)
  let topology: Topology
  beforeEach(async () => {
    topology = await startTopology({stallInterval: STALL_INTERVAL, hostArgs: ['--log-level', 'info']})
  })
  afterEach(async () => {
    await topology?.close()
  })

  it('SIGKILL of a worker host\'s whole process tree mid-burst: its jobs run on the other host, every task ends done', async () => {
    const [front, other] = topology.frontEnds
    const [victim, survivor] = topology.hosts
    // Scale 1.5 of a 6 MP photo takes long enough (about a second) that the host surely holds one when killed.
    const ids = await burst(front!.url, 8, {scale: '1.5'})
    expect(ids).to.have.length(8)
    const unfinished = (): string[] => {
      const lines = logLines(victim!.stderr())
      const done = new Set(lines.filter((line) => line['msg'] === 'task done').map((line) => line['task']))
      return lines.filter((line) => line['msg'] === 'task processing' && !done.has(line['task'])).map((line) => line['task'] as string)
    }
    await until('the victim holds a task', () => unfinished().length > 0)
    const tree = [victim!.child.pid!, ...workerPids(victim!.child.pid!)]
    for (const pid of tree) process.kill(pid, 'SIGKILL')
    await victim!.exited
    const held = unfinished()
    expect(held, 'tasks the host held when it died').to.not.be.empty

    await expectAllDone(other!.url, ids)
    const survivorDone = logLines(survivor!.stderr()).filter((line) => line['msg'] === 'task done').map((line) => line['task'])
    expect(survivorDone, 'the tasks the dead host held were finished by the other').to.include.members(held)
    expect(logLines(survivor!.stderr()).some((line) => line['msg'] === 'the host running this task was lost; it runs again')).to.equal(true)
    // The dead host stops counting once its heartbeat is stale.
    expect(await until('healthz at 1 worker', async () => {
      const now = await health(front!.url)
      return now.body['workers'] === 1 && now
    })).to.deep.equal({status: 200, body: {status: 'ok', workers: 1}})
  })

  it('SIGKILL of a front end mid-burst: every upload it answered 202 ends done, read through the other', async () => {
    const [victim, other] = topology.frontEnds
    let acceptedSoFar = 0
    const killed = new Promise<void>((resolve) => {
      const watch = setInterval(() => {
        if (acceptedSoFar < 5) return
        clearInterval(watch)
        victim!.child.kill('SIGKILL')
        resolve()
      }, 5)
    })
    const ids = await burst(victim!.url, 20, {onAccepted: () => acceptedSoFar++})
    await killed
    expect(ids.length).to.be.within(5, 19)
    await expectAllDone(other!.url, ids)
  })

  it('Redis frozen (SIGSTOP): uploads, reads and /healthz answer 503 unavailable with Retry-After; after SIGCONT every task ends done', async () => {
    const [front, other] = topology.frontEnds
    const ids = await burst(front!.url, 6)
    topology.redis.pause()
    try {
      const refused = await upload(front!.url, {image: readPhoto(PHOTO.jpeg.file), scale: '0.5'})
      expect(refused.headers.get('retry-after')).to.equal('2')
      await expectError(refused, 503, 'unavailable')
      await expectError(await fetch(`${other!.url}/status/${ids[0]}`), 503, 'unavailable')
      const down = await health(other!.url)
      expect(down.status).to.equal(503)
      expect(down.body).to.deep.include({status: 'unavailable'})
      await delay(1_000)
    } finally {
      topology.redis.resume()
    }
    await expectAllDone(other!.url, ids)
    const again = await burst(other!.url, 2)
    expect(again).to.have.length(2)
    await expectAllDone(front!.url, again)
  })

  it('Redis SIGKILLed and restarted on its append-only file: finished tasks keep their results, unfinished ones end done, everything reconnects', async () => {
    const [front, other] = topology.frontEnds
    const before = await burst(front!.url, 2)
    await expectAllDone(front!.url, before)
    const pending = await burst(front!.url, 8)
    // Redis writes the append-only file before it replies, so even a crash keeps every acknowledged write.
    await topology.redis.restart('SIGKILL')
    await expectAllDone(other!.url, [...before, ...pending])
    expect(await until('both hosts counted again', async () => {
      const now = await health(other!.url)
      return now.body['workers'] === 2 && now
    })).to.deep.equal({status: 200, body: {status: 'ok', workers: 2}})
    const after = await burst(other!.url, 2)
    expect(after).to.have.length(2)
    await expectAllDone(front!.url, after)
    // Each front end lost and remade both its connections (commands, pub/sub) once.
    for (const frontEnd of topology.frontEnds) expect(await metric(frontEnd.url, 'imgscale_redis_reconnects_total')).to.equal(2)
  })
})
