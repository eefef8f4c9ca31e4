import {Args, Flags, ux} from '@oclif/core'

import {ClientError} from '../../client/api-client.js'
import {ClientCommand} from '../client-command.js'
import {serverFlags} from '../flags.js'

export default class Submit extends ClientCommand {
  static override summary = 'Upload an image to be scaled; prints the task id.'
  static override description = `Prints only the task id on stdout, so \`id=$(imgscale submit a.jpg 0.5)\` works.
With --wait it polls until the task ends (progress on stderr when it is a
terminal) and exits 1 if the task failed; -o also saves the result (and implies --wait).`
  static override examples = [
    '<%= config.bin %> submit photo.jpg 0.5',
    '<%= config.bin %> submit photo.jpg 0.25 --wait -o small.jpg',
    '<%= config.bin %> submit photo.png 2 --format webp --url http://[::1]:5454',
  ]
  static override args = {
    file: Args.string({description: 'image to upload (JPEG, PNG, WebP, AVIF, GIF or TIFF)', required: true}),
    scale: Args.string({description: 'scale factor, e.g. 0.5 (0 < scale <= the server maximum, 10 by default)', required: true}),
  }
  static override flags = {
    ...serverFlags,
    format: Flags.string({description: 'output format: jpeg, png, webp, avif, gif or tiff (default: the input format)'}),
    wait: Flags.boolean({char: 'W', description: 'wait until the task is done or failed'}),
    output: Flags.string({char: 'o', description: 'save the result here (implies --wait)', helpValue: '<file>'}),
    timeout: Flags.integer({min: 1, default: 300, description: 'seconds --wait waits before giving up'}),
  }

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Submit)
    const client = this.client(flags)
    const accepted = await client.upload(args.file, args.scale, flags.format)
    this.log(accepted.task_id)
    if (!flags.wait && !flags.output) return

    const id = accepted.task_id
    const progress = process.stderr.isTTY
    if (progress) ux.action.start(`Scaling ${args.file}`, accepted.status, {stdout: false})
    const final = await client.waitForEnd(id, flags.timeout * 1000, (status) => {
      if (progress) ux.action.status = status.status
    })
    if (progress) ux.action.stop(final.status)
    if (final.status === 'failed') {
      throw new ClientError(`Task ${id} failed: ${final.error!.message} (${final.error!.code})`)
    }
    if (flags.output) await client.saveResult(id, flags.output)
  }
}
