/** What a user of imgscale does, as the benchmarks do it: upload, wait for the end (long poll), download. */
import {request} from './http-client.js'
import type {BenchImage} from './workloads.js'

export async function viaImgscale(url: string, image: BenchImage): Promise<void> {
  const accepted = await request(`${url}/upload`, {method: 'POST', ...image.upload})
  if (accepted.status !== 202) throw new Error(`upload of ${image.name}: ${accepted.status} ${accepted.body}`)
  const {task_id: id} = JSON.parse(accepted.body.toString()) as {task_id: string}
  for (;;) {
    const status = JSON.parse((await request(`${url}/status/${id}?wait=30`)).body.toString()) as {status: string; error: unknown}
    if (status.status === 'failed') throw new Error(`${image.name} failed: ${JSON.stringify(status.error)}`)
    if (status.status === 'done') break
  }
  const result = await request(`${url}/result/${id}`)
  if (result.status !== 200) throw new Error(`result of ${image.name}: ${result.status}`)
}
