/**
 * Directory read-ahead: once a program has read two files of a directory
 * (cp -a, tar, rsync, a file manager making thumbnails), the chunks of the
 * directory's other small files are loaded ahead, a window of bytes at a
 * time, so that each following open finds its content in the chunk cache
 * instead of waiting for storage and decryption one file at a time.
 *
 * The loads of a window are asked for in one turn of the event loop and so
 * share range reads (lib/cache/coalescing-loader.ts): the 1,999 small files
 * of the medium corpus's bulk directory cost 16 reads instead of 1,999.
 * Programs read in their own order (cp -a goes by inode number), so the
 * window advances by bytes consumed, not by position: every file read,
 * prefetched or not, frees its share of the window and is not loaded again.
 *
 * Prefetched chunks are ordinary entries of the chunk cache, keyed by their
 * id and authenticated against it when opened, so a prefetch can never make
 * a read return other bytes than it would have without it; a chunk that
 * fails to load is left for the read that needs it to report.
 *
 * When the reader passed a SiblingSink (the FUSE mount does), the files of
 * a slice are loaded as one batch instead (ReaderCaches.smallFiles: read,
 * authenticated and decoded off the main thread when the packs are local
 * files), bypassing the chunk cache, and each file's whole content is
 * offered to the sink; what it takes leaves the window, since the reader now
 * holds it and bounds its own memory, and its reads never come back here.
 * What it refuses, or what failed to load, stays in the window and is read
 * as before, which reports any damage.
 */
import { setImmediate as turn } from 'node:timers/promises'
import type { ArchiveReader, DirRef } from '../archive/reader.js'
import { ZERO_CHUNK_ID, type Item } from '../archive/item.js'
import type { SiblingSink } from './node.js'

/** Files larger than this are left to sequential read-ahead when they are read. */
const SMALL_FILE = 1024 * 1024
/** Files read in a directory before its other files are loaded ahead. */
const READS_BEFORE_PREFETCH = 2
/**
 * Loads asked for in one turn of the event loop, at most: between slices the
 * loop serves FUSE requests, and the first slice's reads start while later
 * ones are still being asked for. Asking for the 1,999 small files of the
 * medium corpus's bulk directory in one turn held the loop for 36 ms, and
 * the read that started the prefetch waited 150 ms for its data; in slices
 * no request of a cold `cp -a` of it waited over 26 ms (bench/fuse-trace.py).
 * The copy as a whole took as long (4 alternated runs each: 0.54-0.66 s
 * before, 0.59-0.66 s after).
 */
const SLICE_BYTES = 1024 * 1024
const SLICE_FILES = 128

export class SiblingPrefetch {
  /** Names (latin1) of the files read or loaded ahead: each is loaded at most once. */
  private readonly seen = new Set<string>()
  private readonly ahead = new Map<string, number>()
  private aheadBytes = 0
  private readsSeen = 0
  private entries: AsyncIterator<Item> | null = null
  /** Index in the listing of the next item `entries` gives. */
  private nextIndex = 0
  private sink: SiblingSink | undefined
  private done = false
  private filling: Promise<void> | null = null

  constructor(
    private readonly reader: ArchiveReader,
    private readonly dir: DirRef,
    /** Bytes loaded ahead and not yet read, at most. */
    private readonly windowBytes: number,
  ) {}

  /** A program started reading `item`, a file of this directory; `sink` takes the content of the files loaded ahead. */
  noteRead(item: Item, sink?: SiblingSink): void {
    if (sink) this.sink = sink
    const name = item.name.toString('latin1')
    this.leaveWindow(name)
    if (this.seen.has(name)) return this.fill()
    this.seen.add(name)
    if (++this.readsSeen >= READS_BEFORE_PREFETCH) this.fill()
  }

  /** `name` was read, or taken by the sink: its bytes no longer count against the window. */
  private leaveWindow(name: string): void {
    const prefetched = this.ahead.get(name)
    if (prefetched === undefined) return
    this.ahead.delete(name)
    this.aheadBytes -= prefetched
  }

  /** Loads small files' chunks ahead until the window is full or the directory is done, one load at a time. */
  private fill(): void {
    if (this.done || this.filling || this.readsSeen < READS_BEFORE_PREFETCH) return
    if (this.aheadBytes > this.windowBytes / 2) return // top up by half windows, so that loads still come in batches
    this.filling = this.fillWindow()
      .catch(() => {
        this.done = true // the directory's tree failed to load: its reads will say so
      })
      .finally(() => {
        this.filling = null
      })
  }

  private async fillWindow(): Promise<void> {
    this.entries ??= this.reader.entries(this.dir)[Symbol.asyncIterator]()
    let slice: Ahead[] = []
    let sliceBytes = 0
    try {
      while (this.aheadBytes < this.windowBytes) {
        if (sliceBytes >= SLICE_BYTES || slice.length >= SLICE_FILES) {
          this.load(slice)
          slice = []
          sliceBytes = 0
          await turn()
        }
        const next = await this.entries.next()
        if (next.done) {
          this.done = true
          return
        }
        const item = next.value
        const index = this.nextIndex++
        if (item.kind !== 'file' || item.size > SMALL_FILE || item.size === 0) continue
        const name = item.name.toString('latin1')
        if (this.seen.has(name)) continue
        this.seen.add(name)
        this.ahead.set(name, item.size)
        this.aheadBytes += item.size
        sliceBytes += item.size
        slice.push({ index, name, item })
      }
    } finally {
      this.load(slice)
    }
  }

  /**
   * Loads a slice: into the sink when there is one (a whole batch at once, see SmallFileLoader), else into
   * the chunk cache.
   */
  private load(slice: Ahead[]): void {
    if (slice.length === 0) return
    if (this.sink === undefined) {
      for (const { item } of slice) {
        for (const c of item.chunks ?? []) {
          if (!c.id.equals(ZERO_CHUNK_ID)) this.reader.caches.chunks.get(c.id.toString('hex')).catch(() => undefined) // the read that needs it reports its failure
        }
      }
      return
    }
    this.reader.caches.smallFiles(slice.map((a) => a.item)).then((contents) => {
      for (const [i, a] of slice.entries()) {
        const content = contents[i]
        if (content) this.offer(a.index, a.name, content)
      }
      this.fill()
    }, () => undefined) // the index could not be read: each file's own read reports it
  }

  /** Offers the content of the file at `index` to the sink, unless it was read meanwhile. */
  private offer(index: number, name: string, content: Buffer): void {
    if (!this.ahead.has(name) || !this.sink?.offer(index, content)) return
    this.leaveWindow(name)
  }
}

interface Ahead {
  index: number
  name: string
  item: Item
}
