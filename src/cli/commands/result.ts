import {Args, Flags} from '@oclif/core'

import {ClientCommand} from '../client-command.js'
import {serverFlags} from '../flags.js'

export default class Result extends ClientCommand {
  static override summary = "Download a finished task's image."
  static override description = 'Fails with one sentence when the task is not finished, failed, or unknown.'
  static override examples = [
    '<%= config.bin %> result 01JD3Z6Q2W5N8R4T7Y9B1C3E5G -o small.jpg',
    '<%= config.bin %> result 01JD3Z6Q2W5N8R4T7Y9B1C3E5G -o - > small.jpg',
    '<%= config.bin %> result 01JD3Z6Q2W5N8R4T7Y9B1C3E5G -n 2 -o large.webp',
  ]
  static override args = {id: Args.string({description: 'task id, as printed by `submit`', required: true})}
  static override flags = {
    ...serverFlags,
    out: Flags.string({char: 'o', aliases: ['output'], description: 'file to write ("-" for stdout; default: <id>.<ext> here)', helpValue: '<file>'}),
    index: Flags.integer({char: 'n', min: 0, description: 'which output, for a task made with several (default: 0)'}),
  }

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Result)
    const client = this.client(flags)
    const saved = await client.saveResult(args.id, flags.out, flags.index)
    if (saved !== '-') this.log(saved)
  }
}
