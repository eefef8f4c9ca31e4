import {readFileSync} from 'node:fs'
import {request, multipartUpload} from './lib/http-client.js'
const url = 'http://127.0.0.1:5999'
const up = multipartUpload(readFileSync('/work/shared/fixtures/photos/gain-map.jpg'), 'a.jpg', 0.5)
for (let i = 0; i < 100; i++) { const a = await request(`${url}/upload`, {method: 'POST', ...up}); const id = JSON.parse(a.body.toString()).task_id; await request(`${url}/status/${id}?wait=30`); await request(`${url}/result/${id}`) }
