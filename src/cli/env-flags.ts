/**
 * Every flag of `serve` and `worker` can come from the environment, as a
 * service under systemd or in a container is configured (issue 22), by one
 * rule: IMGSCALE_ and the flag's name in capitals, dashes as underscores
 * (`--max-queue`: `IMGSCALE_MAX_QUEUE`). The contract names two otherwise:
 * `--redis` is `IMGSCALE_REDIS_URL` and `--api-key` is `IMGSCALE_API_KEYS`.
 * A flag given beats its variable, which beats the default; `-h` shows
 * each variable; a bad value names it.
 */
import type {Interfaces} from '@oclif/core'

// `any`: a flag's value type appears in its parser's arguments too, so no narrower type holds every flag.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyFlag = Interfaces.Flag<any>

/** Repeatable flags take several values from one variable, split here. A preset's own fields use commas, so presets split on `;`. */
const LIST_SEPARATOR: Record<string, string> = {preset: ';'}

/** The variable of a flag, by the rule. */
export const envName = (flag: string): string => `IMGSCALE_${flag.toUpperCase().replace(/-/g, '_')}`

/** The flags, each with its variable: the one it names already (the contract's), else the rule's. */
export function fromEnvironment<T extends Record<string, AnyFlag>>(flags: T): T {
  return Object.fromEntries(Object.entries(flags).map(([name, flag]) => [name, withVariable(name, flag)])) as T
}

function withVariable(name: string, flag: AnyFlag): AnyFlag {
  const env = flag.env ?? envName(name)
  if (flag.type === 'boolean') return {...flag, env}
  const parse = flag.parse
  const separator = LIST_SEPARATOR[name] ?? ','
  return {
    ...flag,
    env,
    // oclif calls parse without a token for a value it took from the variable.
    async parse(input: string, context: Parameters<AnyFlag['parse']>[1], options: AnyFlag) {
      if (context.token) return parse(input, context, options as never)
      try {
        if (!flag.multiple) return await parse(input, context, options as never)
        // oclif hands a repeatable flag's variable over whole: its values, split, become the list.
        const values = input.split(separator).map((value) => value.trim()).filter(Boolean)
        return await Promise.all(values.map((value) => parse(value, context, options as never)))
      } catch (error) {
        throw new Error(`$${env}: ${(error as Error).message}`)
      }
    },
  } as AnyFlag
}

const TRUTHY = new Set(['1', 'true', 'y', 'yes'])
const FALSY = new Set(['0', 'false', 'n', 'no'])

/**
 * oclif reads a boolean's variable leniently (anything unknown is false);
 * here an unknown value is refused, naming the variable. Throws a sentence.
 */
export function checkBooleanVariables(flags: Readonly<Record<string, AnyFlag>>): void {
  for (const flag of Object.values(flags)) {
    const value = flag.type === 'boolean' && flag.env ? process.env[flag.env] : undefined
    if (value === undefined || value === '') continue
    const word = value.trim().toLowerCase()
    if (!TRUTHY.has(word) && !FALSY.has(word)) throw new Error(`$${flag.env} must be true or false (1/0, yes/no); got ${JSON.stringify(value.slice(0, 40))}.`)
  }
}
