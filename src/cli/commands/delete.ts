import {Args} from '@oclif/core'

import {ClientCommand} from '../client-command.js'
import {serverFlags} from '../flags.js'

export default class Delete extends ClientCommand {
  static override summary = 'Cancel a task, or forget a finished one (its files go at once).'
  static override description = `A queued task never runs; a processing one is cancelled and its result thrown
away (both end with status cancelled); a finished one is forgotten, so its
status and result answer 404 from then on.`
  static override examples = ['<%= config.bin %> delete 01JD3Z6Q2W5N8R4T7Y9B1C3E5G']
  static override args = {id: Args.string({description: 'task id, as printed by `submit`', required: true})}
  static override flags = {...serverFlags}

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Delete)
    await this.client(flags).delete(args.id)
  }
}
