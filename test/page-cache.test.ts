/**
 * A backup leaves the page cache as it found it: the files it had to read from disk and the packs it
 * wrote do not stay cached (they would push other programs' files out), and the files that were cached
 * before stay cached.
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { scratch } from './helpers/cli.js'
import { cachedBytes, evictFromPageCache } from './helpers/page-cache.js'
import { newTestRepository } from './helpers/repo.js'
import { createArchive } from '../dist/lib/index.js'

const PAGE_SIZE = 4096

/** The bytes of the whole pages a file of `size` bytes takes in the page cache. */
function pagesOf(size: number): number {
  return Math.ceil(size / PAGE_SIZE) * PAGE_SIZE
}

function filesUnder(dir: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath ?? e.path, e.name))
}

/** Whether pages of files in `dir` can be dropped here (tmpfs keeps them) and seen (fincore), tried on a file of its own. */
function canEvict(dir: string): boolean {
  const probe = path.join(dir, 'probe')
  fs.writeFileSync(probe, randomBytes(64 * 1024))
  evictFromPageCache(probe)
  const dropped = cachedBytes(probe) === 0
  fs.rmSync(probe)
  return dropped
}

t.test('a backup drops what it read from disk and what it wrote, and keeps what was cached', async (t) => {
  const src = scratch()
  if (!canEvict(src)) return t.skip('no fincore (util-linux), or this filesystem keeps every page in memory (tmpfs)')
  const files = {
    coldSmall: randomBytes(40 * 1024),
    warmSmall: randomBytes(40 * 1024),
    coldBig: randomBytes(6 * 1024 * 1024 + 1234),
    warmBig: randomBytes(6 * 1024 * 1024 + 1234),
  }
  for (const [name, data] of Object.entries(files)) fs.writeFileSync(path.join(src, name), data)
  for (const name of ['coldSmall', 'coldBig']) evictFromPageCache(path.join(src, name))
  for (const name of ['warmSmall', 'warmBig']) {
    evictFromPageCache(path.join(src, name)) // written pages are dirty until synced; read back, they are plain cached pages
    fs.readFileSync(path.join(src, name))
  }
  for (const [name, data] of Object.entries(files)) {
    t.equal(cachedBytes(path.join(src, name)), name.startsWith('warm') ? pagesOf(data.length) : 0, `${name}: ${name.startsWith('warm') ? 'in' : 'out of'} the cache before the backup`)
  }

  const repo = await newTestRepository()
  const result = await createArchive(repo, { name: 'a', paths: [src], compression: 'zstd,3' })
  t.equal(result.archive.stats.files, 4)

  for (const [name, data] of Object.entries(files)) {
    // Nine tenths, not every page: the kernel may drop a page of its own accord (seen once in some thirty
    // runs); a backup that dropped the file would leave none.
    if (name.startsWith('warm')) t.ok(cachedBytes(path.join(src, name))! >= 0.9 * pagesOf(data.length), `${name}: still cached after the backup`)
    else t.equal(cachedBytes(path.join(src, name)), 0, `${name}: read from disk by the backup, then dropped again`)
  }
  const packs = filesUnder(path.join(repo.backend.location, 'data'))
  t.ok(packs.length > 0, 'the backup wrote packs')
  for (const pack of packs) t.equal(cachedBytes(pack), 0, `pack ${path.basename(pack).slice(0, 12)}…: written, synced and dropped`)
})
