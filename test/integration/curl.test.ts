/**
 * The exact commands of the original exercise, as the README shows them:
 *   curl -X POST http://[::1]:5454/upload -F "image=@x.jpg" -F "scale_factor=0.5"
 *   curl http://[::1]:5454/status/<task_id>
 */
import {execFile} from 'node:child_process'
import {promisify} from 'node:util'

import {expect} from 'chai'

import {PHOTO, sizeOf} from '../helpers/images.js'
import {serveForSuite} from '../helpers/serve.js'

const curl = async (args: string[]): Promise<Buffer> =>
  (await promisify(execFile)('curl', ['-sS', ...args], {encoding: 'buffer', maxBuffer: 64 * 1024 * 1024})).stdout

for (const ip of ['127.0.0.1', '::1']) {
  describe(`the README's curl commands on ${ip}`, function () {
    const served = serveForSuite(['-i', ip])

    it('upload, poll the status until done, download a result of the right size', async () => {
      const accepted = JSON.parse((await curl(['-X', 'POST', `${served().url}/upload`, '-F', `image=@${PHOTO.jpegLarge.file}`, '-F', 'scale_factor=0.5'])).toString())
      expect(accepted.status_url).to.equal(`/status/${accepted.task_id}`)
      let status
      for (let i = 0; i < 200; i++) {
        status = JSON.parse((await curl([`${served().url}/status/${accepted.task_id}`])).toString())
        if (status.status === 'done' || status.status === 'failed') break
        await new Promise((resolve) => setTimeout(resolve, 50))
      }
      expect(status.status).to.equal('done')
      const image = await curl([`${served().url}/result/${accepted.task_id}`])
      expect(await sizeOf(image)).to.include({format: 'jpeg', width: 1363, height: 1113})
    })
  })
}
