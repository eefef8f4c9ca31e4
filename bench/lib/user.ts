/**
 * What a user of imgscale does, as the benchmarks do it: upload with
 * `?wait=30` (the answer is the final status when the task ends in time),
 * long-poll only if it did not, then download; or, with no task, one
 * `POST /resize`.
 */
import {request} from './http-client.js'
import type {BenchImage} from './workloads.js'

interface Status {
  task_id: string
  status: string
  error: unknown
}

export async function viaImgscale(url: string, image: BenchImage): Promise<void> {
  const answer = await request(`${url}/upload?wait=30`, {method: 'POST', ...image.upload})
  if (answer.status !== 200 && answer.status !== 202) throw new Error(`upload of ${image.name}: ${answer.status} ${answer.body}`)
  let status = JSON.parse(answer.body.toString()) as Status
  const id = status.task_id
  while (answer.status === 202 && status.status !== 'failed' && status.status !== 'done') {
    status = JSON.parse((await request(`${url}/status/${id}?wait=30`)).body.toString()) as Status
  }
  if (status.status === 'failed') throw new Error(`${image.name} failed: ${JSON.stringify(status.error)}`)
  const result = await request(`${url}/result/${id}`)
  if (result.status !== 200) throw new Error(`result of ${image.name}: ${result.status}`)
}

/** One `POST /resize`: the image back in the answer. */
export async function viaResize(url: string, image: BenchImage): Promise<Buffer> {
  const answer = await request(`${url}/resize`, {method: 'POST', ...image.upload})
  if (answer.status !== 200) throw new Error(`resize of ${image.name}: ${answer.status} ${answer.body.toString().slice(0, 200)}`)
  return answer.body
}
