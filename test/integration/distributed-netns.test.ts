/**
 * Worker hosts on "other machines": each in its own network namespace,
 * reaching Redis only over a veth link, with its server B on its own
 * loopback. Skipped, with the reason, where `ip netns` cannot be used.
 */
import {expect} from 'chai'

import {submit} from '../helpers/api.js'
import {PHOTO, readPhoto} from '../helpers/images.js'
import {logLines} from '../helpers/logs.js'
import {createNamespace, netnsUnavailable, type Namespace} from '../helpers/netns.js'
import {until} from '../helpers/processes.js'
import {RedisServer} from '../helpers/redis-server.js'
import {endOf, expectResult, startTopology, type Topology} from '../helpers/topology.js'

const workersOnHealthz = async (url: string): Promise<unknown> => ((await (await fetch(`${url}/healthz`)).json()) as {workers: number}).workers

describe('distributed mode: worker hosts in their own network namespaces', function () {
  this.timeout(180_000)
  let namespaces: Namespace[] = []
  let redis: RedisServer
  let topology: Topology

  before(async function () {
    const why = netnsUnavailable()
    if (why) {
      console.log(`      skipped: ${why}`)
      this.skip()
    }
    namespaces = [createNamespace(0), createNamespace(1)]
    // Reachable from beyond loopback, so Redis wants a password (protected mode).
    redis = await RedisServer.start({alsoOn: namespaces.map((ns) => ns.outside), password: 'netns-test-password'})
    topology = await startTopology({
      redis,
      stallInterval: 2,
      hostArgs: ['--log-level', 'info'],
      hostPrefix: (n) => namespaces[n]!.prefix,
      hostRedisUrl: (n) => redis.urlVia(namespaces[n]!.outside),
    })
  })
  after(async () => {
    await topology?.close()
    await redis?.close()
    for (const ns of namespaces) ns.remove()
  })

  const doneBy = (n: number): string[] =>
    logLines(topology.hosts[n]!.stderr())
      .filter((line) => line['msg'] === 'task done')
      .map((line) => line['task'] as string)

  it('each host reaches Redis over its link only, and both take tasks from the front ends', async () => {
    expect(topology.hosts.map((host) => host.redis)).to.deep.equal(namespaces.map((ns) => `${ns.outside}:${redis.port}`))
    const [a, b] = topology.frontEnds
    const ids = await Promise.all(Array.from({length: 12}, (_, n) => submit([a, b][n % 2]!.url, {image: readPhoto(PHOTO.jpeg.file), scale: '0.5'})))
    for (const id of ids) await expectResult(b!.url, await endOf(b!.url, id))
    for (const n of [0, 1]) expect(doneBy(n).filter((id) => ids.includes(id)), `tasks done by host ${n}`).to.not.be.empty
    expect(await workersOnHealthz(a!.url)).to.equal(2)
  })

  it('a cut cable mid-burst: the cut-off host\'s tasks run on the other; mended, it counts and serves again', async () => {
    const [front] = topology.frontEnds
    const ids = await Promise.all(Array.from({length: 8}, () => submit(front!.url, {image: readPhoto(PHOTO.jpegLarge.file), scale: '1.5'})))
    await until('host 0 holds a task', () =>
      logLines(topology.hosts[0]!.stderr()).some((line) => line['msg'] === 'task processing' && ids.includes(line['task'] as string)),
    )
    namespaces[0]!.cut()
    try {
      for (const id of ids) await expectResult(front!.url, await endOf(front!.url, id, 120_000))
      await until('healthz without the cut-off host', async () => (await workersOnHealthz(front!.url)) === 1, 15_000)
    } finally {
      namespaces[0]!.mend()
    }
    await until('healthz with it again', async () => (await workersOnHealthz(front!.url)) === 2, 30_000)
    // It takes work again: tasks until one is done by host 0.
    const before = doneBy(0).length
    await until(
      'host 0 serves again',
      async () => {
        const id = await submit(front!.url, {image: readPhoto(PHOTO.jpeg.file), scale: '0.5'})
        await expectResult(front!.url, await endOf(front!.url, id))
        return doneBy(0).length > before
      },
      60_000,
    )
  })
})
