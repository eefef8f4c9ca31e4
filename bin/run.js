#!/usr/bin/env -S MALLOC_ARENA_MAX=2 node --initial-heap-size=32 --max-semi-space-size=4
// Both must be set when the process starts, hence here (docs/performance.md):
// --initial-heap-size: with V8's small default old generation, `serve`'s
// primary ran a full mark-compact every other photo (Buffers of uploads
// promote fast); a 32 MB starting heap cut that to about one in twenty and
// its CPU per task by about a third, for +20 MB RSS.
// --max-semi-space-size=4: V8 otherwise grows its young generation to
// 16 MB semi-spaces under upload traffic, all of it resident; at 4 MB the
// primary's peak under the photo load fell from 160-166 MB to 117-125 MB at
// the same CPU per task (scavenges of short-lived buffers are cheap).
// MALLOC_ARENA_MAX: glibc gives each thread (libuv's, libvips's) an arena of
// its own; two arenas kept the primary's peak RSS 13-25 MB lower at the same
// CPU. The workers get the same settings (field notes D1).
import {execute} from '@oclif/core'

await execute({dir: import.meta.url})
