#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --initial-heap-size=32
// Both must be set when the process starts, hence here (docs/performance.md):
// --initial-heap-size: with V8's small default old generation, `serve`'s
// primary ran a full mark-compact every other photo (Buffers of uploads
// promote fast); a 32 MB starting heap cut that to about one in twenty and
// its CPU per task by about a third, for +20 MB RSS.
// MALLOC_ARENA_MAX: the primary reads image headers with sharp on libuv's
// threads, and glibc gives each thread an arena of its own; two arenas kept
// its peak RSS 13-25 MB lower at the same CPU. The workers get the same
// setting (field notes D1).
import {execute} from '@oclif/core'

await execute({dir: import.meta.url})
