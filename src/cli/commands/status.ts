import {Args, Flags} from '@oclif/core'

import {ClientCommand} from '../client-command.js'
import {serverFlags} from '../flags.js'
import {formatStatus} from '../status-text.js'

export default class Status extends ClientCommand {
  static override summary = "Show a task's status."
  static override description = 'Exits 1 when the task failed (after printing its status), or is unknown.'
  static override examples = ['<%= config.bin %> status 01JD3Z6Q2W5N8R4T7Y9B1C3E5G', '<%= config.bin %> status 01JD3Z6Q2W5N8R4T7Y9B1C3E5G --json --url http://[::1]:5454']
  static override args = {id: Args.string({description: 'task id, as printed by `submit`', required: true})}
  static override flags = {
    ...serverFlags,
    json: Flags.boolean({description: "print the API's JSON document"}),
  }

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Status)
    const client = this.client(flags)
    const status = await client.status(args.id)
    this.log(flags.json ? JSON.stringify(status, null, 2) : formatStatus(status, client.url))
    if (status.status === 'failed' || status.status === 'cancelled') this.exit(1)
  }
}
