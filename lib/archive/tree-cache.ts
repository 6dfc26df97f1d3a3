/**
 * The tree cache: a directory whose scan is byte for byte what it was at the
 * last backup (names, lstat with every time, xattrs, link targets: all its
 * tree is made of), whose subdirectories' trees are unchanged too, and
 * whose backup settings are the same, keeps its tree. An unchanged
 * directory then costs one scan and one hash, instead of an item, a files
 * cache lookup and an encoding per entry. (borg and restic rebuild every
 * directory's metadata on every backup.)
 *
 * The walk records a directory only when its tree is a pure function of
 * that digest (create.ts decides; hardlink groups come from device and
 * inode numbers, which the scan holds): no warnings, no entry changed since
 * the backup started (a timestamp may not show a change within its granularity,
 * the files cache's rule), not a dry run. A hit is used only if the
 * repository still has the tree.
 *
 * Entries not used for `ttl` backups are dropped, as in the files cache.
 * File layout: [version, [[pathKey, digest, tree id, entries, files, dirs,
 * others, original size, compressed size, age], ...]], pathKey as in the
 * files cache (first 16 bytes of SHA-256 of the absolute path).
 */
import { hash } from 'node:crypto'
import { readCacheFile, writeCacheFile } from '../cache/cache-file.js'
import type { Item } from './item.js'
import { DEFAULT_FILES_CACHE_TTL, pathKey } from './files-cache.js'

const VERSION = 1

/** What a directory adds to the archive's statistics, besides its subdirectories' own shares. */
export interface TreeShare {
  files: number
  dirs: number
  others: number
  originalSize: number
  compressedSize: number
}

export interface CachedTree extends TreeShare {
  tree: Buffer
  entries: number
}

class Entry {
  used = false
  constructor(
    readonly digest: string,
    readonly value: CachedTree,
    readonly age: number,
  ) {}
}

export class TreeCache {
  private readonly entries = new Map<string, Entry>()
  private changed = false

  private constructor(private readonly file: string | null, private readonly ttl: number) {}

  static async load(file: string | null, ttl = DEFAULT_FILES_CACHE_TTL): Promise<TreeCache> {
    const cache = new TreeCache(file, ttl)
    if (file) await cache.read(file)
    return cache
  }

  /** Whether a tree is recorded for `dirPath` at all (then its digest is worth computing). */
  knows(dirPath: Buffer): boolean {
    return this.entries.has(pathKey(dirPath))
  }

  /** The tree recorded for `dirPath` under this digest, if `exists` confirms the repository has it. */
  lookup(dirPath: Buffer, digest: string, exists: (id: Buffer) => boolean): CachedTree | null {
    const e = this.entries.get(pathKey(dirPath))
    if (!e || e.digest !== digest || !exists(e.value.tree)) return null
    e.used = true
    return e.value
  }

  remember(dirPath: Buffer, digest: string, value: CachedTree): void {
    this.changed = true
    const entry = new Entry(digest, value, 0)
    entry.used = true
    this.entries.set(pathKey(dirPath), entry)
  }

  /** Ages unused entries, drops the old ones, and writes the cache (unless it would write what it read). */
  async save(): Promise<void> {
    if (!this.file) return
    if (!this.changed && [...this.entries.values()].every((e) => e.used && e.age === 0)) return
    const rows: unknown[] = []
    for (const [key, e] of this.entries) {
      const age = e.used ? 0 : e.age + 1
      if (age >= this.ttl) continue
      const v = e.value
      rows.push([Buffer.from(key, 'latin1'), Buffer.from(e.digest, 'latin1'), v.tree, v.entries, v.files, v.dirs, v.others, v.originalSize, v.compressedSize, age])
    }
    await writeCacheFile(this.file, [VERSION, rows])
  }

  private async read(file: string): Promise<void> {
    const value = await readCacheFile(file)
    if (!Array.isArray(value) || value[0] !== VERSION) return
    try {
      for (const row of value[1] as unknown[][]) {
        const [key, digest, tree, entries, files, dirs, others, originalSize, compressedSize, age] = row as [Uint8Array, Uint8Array, Uint8Array, ...number[]]
        const cached: CachedTree = { tree: Buffer.from(tree), entries: entries!, files: files!, dirs: dirs!, others: others!, originalSize: originalSize!, compressedSize: compressedSize! }
        this.entries.set(Buffer.from(key).toString('latin1'), new Entry(Buffer.from(digest).toString('latin1'), cached, age!))
      }
    } catch {
      this.entries.clear()
    }
  }
}

/**
 * The digest a directory's tree is cached under: the backup's settings that
 * shape trees, the directory's scan as read, and its subdirectories' trees
 * in name order.
 */
export function treeDigest(settings: string, scan: Buffer, subtrees: readonly { tree: Buffer; entries: number }[]): string {
  const parts: Buffer[] = [Buffer.from(settings), scan]
  for (const s of subtrees) parts.push(s.tree, Buffer.from(String(s.entries)))
  return hash('sha256', Buffer.concat(parts), 'binary').slice(0, 16) // 'binary' is latin1
}

/** Counts a directory's share of the archive statistics from its items as they complete. */
export class ShareTally implements TreeShare {
  files = 0
  dirs = 0
  others = 0
  originalSize = 0
  compressedSize = 0

  constructor(private readonly storedLength: (id: Buffer) => number) {}

  add(item: Item | null): void {
    if (item === null) return
    if (item.kind === 'dir') this.dirs++
    else if (item.kind !== 'file') this.others++
    else {
      this.files++
      this.originalSize += item.size
      for (const c of item.chunks ?? []) this.compressedSize += this.storedLength(c.id)
    }
  }

  /**
   * The counts alone, to be cached. Not the tally itself, nor a spread of it:
   * its storedLength closure would keep the walk's whole context alive (a
   * first backup held every directory's scan until the end: 50 MiB at
   * 100,000 files).
   */
  share(): TreeShare {
    return { files: this.files, dirs: this.dirs, others: this.others, originalSize: this.originalSize, compressedSize: this.compressedSize }
  }
}
