import {RedisServer} from '../test/helpers/redis-server.js'
import {startServe, startWorker} from '../test/helpers/serve.js'
import {workerPids} from '../test/helpers/processes.js'
import {cpuMs} from '../bench/lib/proc.js'
import {drive} from '../bench/lib/stats.js'
import {viaImgscale} from '../bench/lib/user.js'
import {loadWorkloads} from '../bench/lib/workloads.js'

const aof = process.argv[2] !== 'noaof'
const redis = await RedisServer.start()
const c = redis.client()
if (!aof) await c.config('SET', 'appendonly', 'no')
const fe = await startServe(['--redis', redis.url, '-w', '0', '--max-queue', '1000'])
const host = await startWorker(['--redis', redis.url, '-w', '2'])
const photos = (await loadWorkloads()).find((w) => w.name === 'photos')!
for (const image of photos.images) await viaImgscale(fe.url, image)
const pids = {redis: redis.pid, fe: fe.child.pid!, host: host.child.pid!, workers: workerPids(host.child.pid!)}
const snap = () => ({redis: cpuMs(pids.redis), fe: cpuMs(pids.fe), host: cpuMs(pids.host), workers: pids.workers.map(cpuMs).reduce((a, b) => a + b, 0), client: process.cpuUsage().user / 1000 + process.cpuUsage().system / 1000})
const before = snap()
const N = 200
const {seconds} = await drive(N, 8, (i) => viaImgscale(fe.url, photos.images[i % photos.images.length]!))
const after = snap()
console.log(`aof=${aof} ${(N / seconds).toFixed(1)} img/s; cpu ms/task:`, Object.fromEntries(Object.entries(after).map(([k, v]) => [k, ((v - (before as any)[k]) / N).toFixed(1)])))
await fe.stop(); await host.stop(); c.disconnect(); await redis.close()
