/**
 * Scans directories ahead of a depth-first walk: while the walk works on
 * one directory's files, the directories it will enter next are already
 * being read (names, lstat, xattrs) on libuv's thread pool. On a cold cache
 * this overlaps the inode reads that otherwise come one at a time; on a warm
 * one it moves the metadata syscalls off the main thread.
 */
import { scanDirectory, type ScannedEntry } from '../native/scan.js'

/** Scans running at once: libuv's pool has four threads, and file reads need one too. */
const MAX_RUNNING = 3
/** Scans done ahead and not yet taken: bounds the memory held for the walk. */
const MAX_HELD = 64
/** Directories remembered as coming next (the nearest in walk order are kept). */
const MAX_QUEUED = 256

export class DirectoryScanner {
  /** Started (running or done) and not yet taken, by path (latin1). */
  private readonly started = new Map<string, Promise<ScannedEntry[]>>()
  /** Not started, in the order the walk will want them. */
  private queue: Buffer[] = []
  private readonly queued = new Set<string>()
  private running = 0

  /** The entries of `dir`: the scan started ahead if there was one, else a new one. */
  scan(dir: Buffer): Promise<ScannedEntry[]> {
    const key = dir.toString('latin1')
    this.queued.delete(key)
    const ahead = this.started.get(key)
    if (ahead) {
      this.started.delete(key)
      this.startNext()
      return ahead
    }
    return scanDirectory(dir)
  }

  /**
   * The walk will enter `dirs`, in this order, before anything announced
   * earlier (it is depth-first, so a directory's subdirectories come before
   * its siblings).
   */
  announce(dirs: Buffer[]): void {
    if (dirs.length === 0) return
    this.queue = [...dirs, ...this.queue]
    for (const d of dirs) this.queued.add(d.toString('latin1'))
    for (const dropped of this.queue.splice(MAX_QUEUED)) this.queued.delete(dropped.toString('latin1'))
    this.startNext()
  }

  private startNext(): void {
    while (this.running < MAX_RUNNING && this.started.size < MAX_HELD && this.queue.length > 0) {
      const dir = this.queue.shift()!
      const key = dir.toString('latin1')
      if (!this.queued.delete(key)) continue // taken by scan() meanwhile
      this.running++
      const scanned = scanDirectory(dir)
      scanned
        .catch(() => undefined) // reported to whoever takes it
        .finally(() => {
          this.running--
          this.startNext()
        })
      this.started.set(key, scanned)
    }
  }
}
