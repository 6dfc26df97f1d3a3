/**
 * How long opening chunks holds the event loop, without FUSE: reads every chunk of one file through the
 * reader's chunk cache, four at a time (like the mount's read-ahead), with chunks opened on the main
 * thread (WORKERS 0) or on the BlobOpener pool, and prints throughput and event-loop delay.
 *
 *   node --import=.../@tapjs/typescript/dist/esm/import.mjs chunk-open-bench.ts REPO ARCHIVE PATH WORKERS
 *
 * Env: CAIRN_PASSPHRASE, CAIRN_CONFIG_DIR, CAIRN_CACHE_DIR.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { ArchiveReader, Repository, makeReaderCaches } from '../../../dist/lib/index.js'
import { BlobOpener, chunkLoader } from '../../../dist/lib/cache/blob-opener.js'

const [location, archive, file, workersText] = process.argv.slice(2)
if (!location || !archive || !file) throw new Error('usage: chunk-open-bench.ts REPO ARCHIVE PATH [WORKERS]')
const workers = Number(workersText ?? 2)
const repo = await Repository.open({ location, passphrase: process.env.CAIRN_PASSPHRASE ?? '', configDir: process.env.CAIRN_CONFIG_DIR ?? '/tmp', cacheDir: process.env.CAIRN_CACHE_DIR ?? null })
const opener = workers === 0 ? null : BlobOpener.forRepository(repo, { workers })
const reader = await ArchiveReader.open(repo, archive, makeReaderCaches(repo, { chunkBytes: 256 << 20, loadChunk: chunkLoader(repo, opener) }))
const item = await reader.resolve(Buffer.from(file))
if (!item || item.kind !== 'file') throw new Error(`${file} is not a file in ${archive}`)
const content = reader.content(item)
await repo.index()

const h = monitorEventLoopDelay({ resolution: 1 })
h.enable()
const t0 = performance.now()
let next = 0
let bytes = 0
const lane = async (): Promise<void> => {
  while (next < content.chunkCount) {
    const chunk = await content.chunk(next++)
    bytes += chunk.length
  }
}
await Promise.all([lane(), lane(), lane(), lane()])
const ms = performance.now() - t0
h.disable()
const d = (ns: number): string => (ns / 1e6).toFixed(1)
console.log(`${file} workers=${workers}: ${content.chunkCount} chunks, ${(bytes / 1e6).toFixed(0)} MB in ${ms.toFixed(0)} ms (${(bytes / 1e3 / ms).toFixed(0)} MB/s); event-loop delay p50 ${d(h.percentile(50))} p99 ${d(h.percentile(99))} max ${d(h.max)} ms`)
await opener?.close()
