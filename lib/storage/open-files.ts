/**
 * Keeps recently read files open, so that many small range reads of the
 * same pack (a restore of small files, a mount listing a directory) cost one
 * read each instead of open + read + close. Packs never change once
 * written, so a handle stays valid; one removed while open is still read
 * from its old inode, which is harmless (blobs are authenticated).
 *
 * At most `max` idle handles are kept (least recently used closed first);
 * handles in use are never closed under their reader.
 */
import { promises as fs } from 'node:fs'

interface Entry {
  handle: Promise<fs.FileHandle>
  users: number
}

export class OpenFiles {
  private readonly entries = new Map<string, Entry>()

  constructor(private readonly max = 64) {}

  async use<T>(path: string, fn: (handle: fs.FileHandle) => Promise<T>): Promise<T> {
    let entry = this.entries.get(path)
    if (entry) {
      // Most recently used goes last.
      this.entries.delete(path)
      this.entries.set(path, entry)
    } else {
      entry = { handle: fs.open(path, 'r'), users: 0 }
      this.entries.set(path, entry)
      entry.handle.catch(() => this.entries.get(path) === entry && this.entries.delete(path))
    }
    entry.users++
    try {
      return await fn(await entry.handle)
    } finally {
      entry.users--
      this.trim()
    }
  }

  private trim(): void {
    if (this.entries.size <= this.max) return
    for (const [path, entry] of this.entries) {
      if (this.entries.size <= this.max) break
      if (entry.users > 0) continue
      this.entries.delete(path)
      void entry.handle.then((h) => h.close()).catch(() => undefined)
    }
  }

  async closeAll(): Promise<void> {
    const all = [...this.entries.values()]
    this.entries.clear()
    await Promise.all(all.map((e) => e.handle.then((h) => h.close()).catch(() => undefined)))
  }
}
