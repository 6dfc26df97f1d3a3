/**
 * Scans directories ahead of a depth-first walk: while the walk works on
 * one directory, the directories it will enter next are already being read
 * (names, lstat, xattrs) on libuv's thread pool. On a cold cache this
 * overlaps the inode reads that otherwise come one at a time; on a warm one
 * it keeps the walk from waiting for each scan in turn.
 *
 * Every finished scan is expanded at once (`subdirsOf` says which of its
 * entries the walk will enter), so the read-ahead reaches grandchildren
 * before the walk gets there; the directories waiting to be scanned are
 * kept in walk order, nearest first.
 */
import { scanDirectory, type DirectoryScan } from '../native/scan.js'

/** Scans running at once: libuv's pool has four threads, and file reads need one too. */
const MAX_RUNNING = 3
/** Scans done ahead and not yet taken: bounds the memory held for the walk. */
const MAX_HELD = 64
/** Directories remembered as coming next (the nearest in walk order are kept). */
const MAX_QUEUED = 256

export interface ScanTarget {
  path: Buffer
  /** Names from the walk's root down to this directory: their order is the walk's. */
  order: readonly Buffer[]
}

export interface ExpandedScan<T> {
  scan: DirectoryScan
  /** The subdirectories the walk will enter, in name order. */
  subdirs: T[]
}

export class DirectoryScanner<T extends ScanTarget> {
  /** Started (running or done) and not yet taken, by path (latin1). */
  private readonly started = new Map<string, Promise<ExpandedScan<T>>>()
  /** Not started, sorted in walk order. */
  private readonly queue: T[] = []
  private running = 0

  constructor(private readonly subdirsOf: (dir: T, scan: DirectoryScan) => T[]) {}

  /** The scan of `dir`: the one started ahead if there was one, else a new one. */
  scan(dir: T): Promise<ExpandedScan<T>> {
    const key = dir.path.toString('latin1')
    const ahead = this.started.get(key)
    if (ahead) {
      this.started.delete(key)
      this.startNext()
      return ahead
    }
    const at = this.queue.findIndex((d) => d.path.equals(dir.path))
    if (at >= 0) this.queue.splice(at, 1)
    return this.run(dir)
  }

  private run(dir: T): Promise<ExpandedScan<T>> {
    return scanDirectory(dir.path).then((scan) => {
      const subdirs = this.subdirsOf(dir, scan)
      this.enqueue(subdirs)
      return { scan, subdirs }
    })
  }

  private enqueue(dirs: readonly T[]): void {
    for (const d of dirs) {
      let lo = 0
      let hi = this.queue.length
      while (lo < hi) {
        const mid = (lo + hi) >> 1
        if (walkOrder(this.queue[mid]!.order, d.order) < 0) lo = mid + 1
        else hi = mid
      }
      this.queue.splice(lo, 0, d)
    }
    if (this.queue.length > MAX_QUEUED) this.queue.length = MAX_QUEUED
    this.startNext()
  }

  private startNext(): void {
    while (this.running < MAX_RUNNING && this.started.size < MAX_HELD && this.queue.length > 0) {
      const dir = this.queue.shift()!
      this.running++
      const scanned = this.run(dir)
      scanned
        .catch(() => undefined) // reported to whoever takes it
        .finally(() => {
          this.running--
          this.startNext()
        })
      this.started.set(dir.path.toString('latin1'), scanned)
    }
  }
}

/** Depth-first order: name by name, a directory before everything under it. */
function walkOrder(a: readonly Buffer[], b: readonly Buffer[]): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const c = Buffer.compare(a[i]!, b[i]!)
    if (c !== 0) return c
  }
  return a.length - b.length
}
