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
 * Files are loaded in the order the program reads them, as its first two
 * reads show: tar, rsync and file managers go by name, the listing's order;
 * cp -a sorts a directory by inode number, which here is a hash of the path
 * (lib/vfs/inode.ts) and so unrelated to names. Loaded in listing order,
 * cp -a's next file was one loaded ahead only as often as chance had it
 * (bench/RESULTS.md, sessions 17 and 18). Loaded by inode, the files of a
 * batch lie scattered over the packs, a read each: asking the kernel for the
 * window's stretch of the packs first (posix_fadvise WILLNEED, session 18)
 * made the copy's first batch wait behind that read-ahead, 57-99 ms instead
 * of 27-42 (bench/RESULTS.md, session 19), and was dropped.
 * Whatever the order, the window advances by bytes consumed, not by
 * position: every file read, prefetched or not, frees its share of the
 * window and is not loaded again.
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
/** The first slice is smaller, so that its files come in while later slices are still being asked for. */
const FIRST_SLICE_FILES = 16
/**
 * Directories of more entries are loaded in listing order: sorting them holds all their entries at once, and
 * the sort itself holds the event loop, and every request to the mount with it (by inode number: 1.3 ms for
 * 2,000 entries, 9 ms for 16,384, 64 ms for 65,536 on this machine).
 */
const SORTED_UP_TO = 16_384
/** Entries read between turns of the event loop while the order is worked out (a tree page holds 1,024). */
const ENTRIES_PER_TURN = 1024

/** A file of the directory and its position in the listing. */
interface Listed {
  index: number
  item: Item
}

export class SiblingPrefetch {
  /** Names (latin1) of the files read or loaded ahead: each is loaded at most once. */
  private readonly seen = new Set<string>()
  private readonly ahead = new Map<string, number>()
  private aheadBytes = 0
  /** Names (latin1) of the first files read, in the order they were: they tell the program's order. */
  private readonly firstReads: string[] = []
  /** The directory's files in the order they are loaded, once the prefetch has started. */
  private order: Iterator<Listed> | AsyncIterator<Listed> | null = null
  private sliceFiles = FIRST_SLICE_FILES
  /**
   * The program reads by inode number, so the files loaded next lie scattered over the packs. Into the chunk
   * cache the whole window is then asked for at once, so that its range reads are still shared
   * (CoalescingLoader); batches for a sink read scattered blobs well enough on their own.
   */
  private scattered = false
  private sink: SiblingSink | undefined
  private done = false
  private filling: Promise<void> | null = null

  constructor(
    private readonly reader: ArchiveReader,
    private readonly dir: DirRef,
    /** Bytes loaded ahead and not yet read, at most. */
    private readonly windowBytes: number,
    /** The inode number a file of the directory is shown with. */
    private readonly inodeOf: (item: Item) => bigint,
  ) {}

  /** A program started reading `item`, a file of this directory; `sink` takes the content of the files loaded ahead. */
  noteRead(item: Item, sink?: SiblingSink): void {
    if (sink) this.sink = sink
    const name = item.name.toString('latin1')
    this.leaveWindow(name)
    if (this.seen.has(name)) return this.fill()
    this.seen.add(name)
    if (this.firstReads.length < READS_BEFORE_PREFETCH) this.firstReads.push(name)
    this.fill()
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
    if (this.done || this.filling || this.firstReads.length < READS_BEFORE_PREFETCH) return
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
    this.order ??= await this.readingOrder()
    let slice: Ahead[] = []
    let sliceBytes = 0
    try {
      while (this.aheadBytes < this.windowBytes) {
        if (!(this.scattered && this.sink === undefined) && (sliceBytes >= SLICE_BYTES || slice.length >= this.sliceFiles)) {
          this.load(slice)
          slice = []
          sliceBytes = 0
          this.sliceFiles = Math.min(SLICE_FILES, this.sliceFiles * 2)
          await turn()
        }
        const next = await this.order.next()
        if (next.done) {
          this.done = true
          return
        }
        const { index, item } = next.value
        if (!isSmallFile(item)) continue
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
   * The directory's entries in the order the program reads them: by inode number when its second read
   * was the file whose number follows its first's, else in listing order.
   */
  private async readingOrder(): Promise<Iterator<Listed> | AsyncIterator<Listed>> {
    const entries = this.reader.entries(this.dir)[Symbol.asyncIterator]()
    const listed: Listed[] = []
    for (let next = await entries.next(); !next.done; next = await entries.next()) {
      listed.push({ index: listed.length, item: next.value })
      if (listed.length > SORTED_UP_TO) return inListingOrder(listed, entries)
      if (listed.length % ENTRIES_PER_TURN === 0) await turn() // cached pages come in microtasks: let requests in
    }
    const [first, second] = this.firstReads as [string, string]
    const files = listed
      .filter((e) => e.item.kind === 'file' && e.item.size > 0)
      .map((e) => ({ ...e, ino: this.inodeOf(e.item) }))
      .sort((a, b) => (a.ino < b.ino ? -1 : a.ino > b.ino ? 1 : 0))
    const at = files.findIndex((e) => e.item.name.toString('latin1') === first)
    this.scattered = at >= 0 && files[at + 1]?.item.name.toString('latin1') === second
    return this.scattered ? files.values() : listed.values()
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

/** Files this loads ahead: larger ones are left to sequential read-ahead, empty ones have nothing to load. */
function isSmallFile(item: Item): boolean {
  return item.kind === 'file' && item.size > 0 && item.size <= SMALL_FILE
}

/** `listed`, the first entries of a directory, then the rest of them as `entries` gives them. */
async function* inListingOrder(listed: Listed[], entries: AsyncIterator<Item>): AsyncGenerator<Listed> {
  yield* listed
  let index = listed.length
  for (let next = await entries.next(); !next.done; next = await entries.next()) yield { index: index++, item: next.value }
}
