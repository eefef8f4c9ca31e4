import {Command} from '@oclif/core'

import {StartupError} from '../errors.js'
import {checkBooleanVariables} from './env-flags.js'

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

  /** A boolean flag's variable holding neither true nor false stops the command, naming it. */
  protected checkVariables(flags: Parameters<typeof checkBooleanVariables>[0]): void {
    try {
      checkBooleanVariables(flags)
    } catch (error) {
      this.fail((error as Error).message)
    }
  }

  /** Waits for a service to start; one that cannot (port in use, Redis unreachable, ...) says why in one sentence. */
  protected async started<T>(starting: Promise<T>): Promise<T> {
    try {
      return await starting
    } catch (error) {
      if (error instanceof StartupError) this.fail(error.message)
      throw error
    }
  }
}
