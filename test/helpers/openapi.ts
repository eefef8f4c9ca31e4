/**
 * The OpenAPI document as a test oracle: every response a test receives from
 * server A through fetch is checked against it (its status must be listed
 * for the route, and a JSON body must match the schema), so the document
 * cannot drift from the server. Installed for every test by the root hooks
 * in test/helpers/root-hooks.ts.
 */
import {Ajv2020} from 'ajv/dist/2020.js'
import addFormats from 'ajv-formats'

import {DEFAULTS} from '../../src/config.js'
import {openApiDocument} from '../../src/http/openapi.js'

interface Operation {
  responses: Record<string, {content?: Record<string, {schema?: object}>}>
}
type Document = {paths: Record<string, Record<string, Operation>>}

export const DOCUMENT = openApiDocument(DEFAULTS) as Document

const ajv = new Ajv2020({strict: false, allErrors: true})
addFormats.default(ajv)
ajv.addSchema(DOCUMENT as object, 'openapi.json')

/** `/status/{task_id}` matches `/status/01J...`; one template per path segment count and literal. */
const ROUTES = Object.keys(DOCUMENT.paths).map((template) => ({
  template,
  pattern: new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`),
}))

const pointer = (...parts: string[]): string => parts.map((part) => part.replaceAll('~', '~0').replaceAll('/', '~1')).join('/')

/** What is wrong with this response by the document; empty when nothing is, or the route is not ours. */
export function violations(method: string, path: string, status: number, contentType: string | null, body: unknown): string[] {
  const route = ROUTES.find(({pattern}) => pattern.test(path))
  const operation = route && DOCUMENT.paths[route.template]![method.toLowerCase()]
  if (!route || !operation) return []
  const where = `${method} ${path} -> ${status}`
  const response = operation.responses[String(status)]
  if (!response) return [`${where}: status ${status} is not in the document for ${method} ${route.template}`]
  if (!contentType?.startsWith('application/json')) return []
  if (!response.content?.['application/json']) return [`${where}: a JSON body, but the document gives none for this status`]
  const ref = `openapi.json#/${pointer('paths', route.template, method.toLowerCase(), 'responses', String(status), 'content', 'application/json', 'schema')}`
  const validate = ajv.getSchema(ref)
  if (!validate) return [`${where}: no schema at ${ref}`]
  if (validate(body)) return []
  return [`${where}: ${ajv.errorsText(validate.errors)} in ${JSON.stringify(body).slice(0, 300)}`]
}
