import {Command} from '@oclif/core'

export abstract class BaseCommand extends Command {
  /**
   * Prints one sentence on stderr and exits 1. oclif's own error printer
   * wraps at 80 columns when stderr is not a terminal, which splits the
   * sentence for scripts and logs.
   */
  protected fail(message: string): never {
    process.stderr.write(`imgscale: ${message}\n`)
    this.exit(1)
  }
}
