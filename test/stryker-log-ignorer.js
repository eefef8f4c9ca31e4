// A StrykerJS ignorer: no mutants in log statements (`log.info(...)`,
// `this.log.warn(...)`). Logs are for people; the few lines behaviour
// depends on are asserted end to end (docs/testing.md). Everything else,
// error messages included, is mutated.
import {declareValuePlugin, PluginKind} from '@stryker-mutator/api/plugin'

const LEVELS = new Set(['trace', 'debug', 'info', 'warn', 'error', 'fatal'])

/** `log` or `this.log`. */
function isLogger(node) {
  if (node.type === 'Identifier') return node.name === 'log'
  return node.type === 'MemberExpression' && node.object.type === 'ThisExpression' && node.property.type === 'Identifier' && node.property.name === 'log'
}

export const strykerPlugins = [
  declareValuePlugin(PluginKind.Ignore, 'log-statements', {
    shouldIgnore(path) {
      if (!path.isExpressionStatement()) return undefined
      const call = path.node.expression
      if (call.type !== 'CallExpression' || call.callee.type !== 'MemberExpression') return undefined
      const {object, property} = call.callee
      return isLogger(object) && property.type === 'Identifier' && LEVELS.has(property.name) ? 'a log statement' : undefined
    },
  }),
]
