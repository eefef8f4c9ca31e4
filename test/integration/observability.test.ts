import {expect} from 'chai'

import {metric, submit, waitForEnd} from '../helpers/api.js'
import {PHOTO, readPhoto, truncatedJpeg} from '../helpers/images.js'
import {logLines} from '../helpers/logs.js'
import {serveForSuite} from '../helpers/serve.js'

describe('observability: JSON logs and GET /metrics', function () {
  const served = serveForSuite(['--log-level', 'info'])
  const jpeg = readPhoto(PHOTO.jpeg.file)
  /** Bytes of the results downloaded by the tests so far. */
  let downloaded = 0

  it('logs one JSON line per request and per task transition, each with the task id', async () => {
    const id = await submit(served().url, {image: jpeg, scale: '0.5'})
    await waitForEnd(served().url, id)
    downloaded += (await fetch(`${served().url}/result/${id}`).then((response) => response.arrayBuffer())).byteLength
    await new Promise((resolve) => setTimeout(resolve, 200))

    const lines = logLines(served().stderr()).filter((line) => line['task'] === id)
    expect(lines.filter((line) => line['msg'] !== 'request').map((line) => line['msg'])).to.deep.equal(['task queued', 'task processing', 'task done'])
    const requests = lines.filter((line) => line['msg'] === 'request')
    expect(requests[0]).to.include({method: 'POST', path: '/upload', status: 202, level: 30})
    const [output] = lines.find((line) => line['msg'] === 'task done')!['outputs'] as Array<{bytes: number}>
    expect(requests.at(-1)).to.include({method: 'GET', path: `/result/${id}`, status: 200, bytesOut: output!.bytes})
    expect(requests.every((line) => typeof line['ms'] === 'number')).to.equal(true)
  })

  it('GET /metrics answers in Prometheus text format with the service figures', async () => {
    const failed = await submit(served().url, {image: truncatedJpeg(), scale: '0.5'})
    await waitForEnd(served().url, failed)
    const done = await submit(served().url, {image: jpeg, scale: '0.25'})
    const end = await waitForEnd(served().url, done)
    downloaded += (await fetch(`${served().url}/result/${done}`).then((response) => response.arrayBuffer())).byteLength
    await fetch(`${served().url}/status/${done}`)

    const response = await fetch(`${served().url}/metrics`)
    expect(response.status).to.equal(200)
    expect(response.headers.get('content-type')).to.match(/^text\/plain; version=0\.0\.4/)
    const text = await response.text()
    for (const name of [
      'imgscale_tasks_total',
      'imgscale_task_duration_seconds',
      'imgscale_queue_depth',
      'imgscale_tasks_inflight',
      'imgscale_workers_live',
      'imgscale_worker_restarts_total',
      'imgscale_task_retries_total',
      'imgscale_upload_bytes_total',
      'imgscale_result_bytes_total',
      'imgscale_http_requests_total',
      'process_resident_memory_bytes',
    ]) {
      expect(text).to.contain(`# TYPE ${name} `)
    }
    const url = served().url
    expect(await metric(url, 'imgscale_tasks_total', '{status="done",code=""}')).to.equal(2)
    expect(await metric(url, 'imgscale_tasks_total', '{status="failed",code="corrupt_image"}')).to.equal(1)
    expect(await metric(url, 'imgscale_task_duration_seconds_count', '{status="done"}')).to.equal(2)
    // In seconds, from start to end of each task: at least the last task's own duration, and not a thousand times more.
    const lastSeconds = (Date.parse(end.finished_at!) - Date.parse(end.started_at!)) / 1000
    const sum = await metric(url, 'imgscale_task_duration_seconds_sum', '{status="done"}')
    expect(sum).to.be.at.least(lastSeconds).and.below(5)
    expect(await metric(url, 'imgscale_task_duration_seconds_bucket', '{le="60",status="done"}')).to.equal(2)
    expect(await metric(url, 'imgscale_workers_live')).to.equal(2)
    expect(await metric(url, 'imgscale_queue_depth')).to.equal(0)
    expect(await metric(url, 'imgscale_tasks_inflight')).to.equal(0)
    expect(await metric(url, 'imgscale_upload_bytes_total')).to.equal(2 * jpeg.length + truncatedJpeg().length)
    expect(await metric(url, 'imgscale_result_bytes_total')).to.equal(downloaded)
    expect(await metric(url, 'imgscale_http_requests_total', '{method="POST",route="/upload",status="202"}')).to.equal(3)
    // Routes are labelled by pattern, never by path: a task id in a label would make a series per task.
    expect(await metric(url, 'imgscale_http_requests_total', '{method="GET",route="/result/:id",status="200"}')).to.equal(2)
    expect(await metric(url, 'imgscale_http_requests_total', '{method="GET",route="/status/:id",status="200"}')).to.be.at.least(1)
    expect(text).not.to.match(/route="[^"]*[0-9A-HJKMNP-TV-Z]{26}/)
  })
})
