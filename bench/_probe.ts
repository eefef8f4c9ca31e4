import {readFileSync, readdirSync} from 'node:fs'
import sharp from 'sharp'
import {startServe} from '../test/helpers/serve.js'
import {request, multipartUpload} from './lib/http-client.js'
const served = await startServe(['-w', '2'])
const url = served.url
const small = process.argv[2] !== 'photo'
const data = small ? await sharp('/work/shared/fixtures/photos/Landscape_1.jpg').resize(320, 240, {fit: 'inside'}).toBuffer() : readFileSync('/work/shared/fixtures/photos/gain-map.jpg')
const up = multipartUpload(data, 'a.jpg', 0.5)
const threads = () => Object.fromEntries(readdirSync(`/proc/${served.child.pid}/task`).map(t => { const s = readFileSync(`/proc/${served.child.pid}/task/${t}/stat`, 'utf8'); const f = s.split(') ')[1]!.split(' '); return [t, [Number(f[11]) * 10, Number(f[12]) * 10]] }))
const N = small ? 300 : 60
const one = async () => { const a = await request(`${url}/upload`, {method: 'POST', ...up}); const id = JSON.parse(a.body.toString()).task_id; await request(`${url}/status/${id}?wait=30`); await request(`${url}/result/${id}`) }
for (let i = 0; i < 20; i++) await one()
const before = threads()
const t0 = performance.now()
for (let i = 0; i < N; i++) await one()
const after = threads()
console.log(small ? 'small' : 'photo', 'ms/task wall', ((performance.now() - t0) / N).toFixed(2))
for (const k of Object.keys(after)) { const u = (after[k]![0] - (before[k]?.[0] ?? 0)) / N, s = (after[k]![1] - (before[k]?.[1] ?? 0)) / N; if (u + s > 0.1) console.log(k === String(served.child.pid) ? 'main  ' : 'thread', 'user', u.toFixed(2), 'sys', s.toFixed(2)) }
await served.stop()
