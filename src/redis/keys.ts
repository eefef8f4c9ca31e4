/**
 * Where imgscale keeps things in Redis (docs/scaling.md has the table).
 * BullMQ's own keys start with `imgscale:tasks:`; ours are beside them.
 */
export const PREFIX = 'imgscale'
/** The BullMQ queue every front end adds to and every worker host takes from. */
export const QUEUE = 'tasks'

export const keys = {
  /** The task's status document (JSON), with the result's expiry once it ended. */
  task: (id: string): string => `${PREFIX}:task:${id}`,
  /** The uploaded image, until its task ends. */
  upload: (id: string): string => `${PREFIX}:upload:${id}`,
  /** Output `index` of the task (0: its `/result/<id>`), until the task expires. */
  result: (id: string, index: number): string => `${PREFIX}:result:${id}${index === 0 ? '' : `:${index}`}`,
  /**
   * An upload's hashed `Idempotency-Key`: the id of the task made under it,
   * with that task's expiry, or '' while its upload is being stored (a short
   * expiry).
   */
  idempotency: (key: string): string => `${PREFIX}:idempotency:${key}`,
  /** Hash: worker host id -> its workers and when that stops being news. */
  hosts: `${PREFIX}:hosts`,
  /** Sorted set: ids of ended tasks whose callback is to be delivered, scored by when it is next due. */
  callbacks: `${PREFIX}:callbacks`,
  /** Pub/sub channel: the id of every task that ends, for long polls on any front end. */
  ended: `${PREFIX}:ended`,
  /** A `POST /resize` image waiting for a worker host: only while its request runs (a short expiry besides). */
  instantImage: (id: string): string => `${PREFIX}:instant:${id}:image`,
  /** Its answer (a reply frame), for the front end to take at once: seconds of expiry. */
  instantAnswer: (id: string): string => `${PREFIX}:instant:${id}:answer`,
  /** Pub/sub channel: the id of every `/resize` answered, to wake the front end that waits for it. */
  instantAnswered: `${PREFIX}:instant-answered`,
}

