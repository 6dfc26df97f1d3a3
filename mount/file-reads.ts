/**
 * Reads of files: read-ahead on sequential access, and reading around
 * damaged chunks when the mount allows damaged files.
 *
 * Opens and releases never reach JavaScript (the native binding answers
 * them, which saves two trips per file opened), so there are no file
 * handles: a reader's progress is remembered per inode number, for the most
 * recently read files. Two programs reading one file at once share that
 * state, which only makes read-ahead less eager, never wrong.
 *
 * Read-ahead works through the generic FileNode interface: touching one byte
 * at a position makes the chunk cache load (and keep) the whole chunk that
 * holds it, so probing every PROBE_STEP bytes ahead of a sequential reader
 * loads the next chunks while the kernel is still asking for this one. The
 * step is a quarter of the smallest chunk, so no chunk is skipped; probes of
 * a chunk already cached or loading cost a map lookup (loads of one chunk
 * are merged).
 */
import { LRUCache } from 'lru-cache'
import type { FileNode, SiblingSink } from '../lib/index.js'

const PROBE_STEP = 128 * 1024
/** A read that starts this close after the previous one's end still counts as sequential (the kernel reorders a little). */
const SEQUENTIAL_SLACK = 1024 * 1024
/** Files whose readers' progress is remembered. */
const READERS = 256

interface Progress {
  /** End of the last read. */
  lastEnd: number
  /** Everything before this offset has been probed. */
  aheadTo: number
}

export class FileReads {
  private readonly progress = new LRUCache<bigint, Progress>({ max: READERS })

  constructor(private readonly readAheadBytes: number) {}

  /** Reads, and when the reader of `node` goes forward sequentially, starts loading the chunks ahead. */
  read(node: FileNode, position: number, length: number, siblings?: SiblingSink): Promise<Buffer> {
    if (this.readAheadBytes > 0) this.readAhead(node, position, length)
    return node.read(position, length, siblings)
  }

  private readAhead(node: FileNode, position: number, length: number): void {
    let file = this.progress.get(node.attr.ino)
    if (!file) this.progress.set(node.attr.ino, (file = { lastEnd: 0, aheadTo: 0 }))
    const end = Math.min(node.attr.size, position + length)
    const sequential = position >= file.lastEnd - SEQUENTIAL_SLACK && position <= file.lastEnd + SEQUENTIAL_SLACK
    file.lastEnd = Math.max(end, position)
    if (!sequential) return
    const target = Math.min(node.attr.size, end + this.readAheadBytes)
    let p = Math.max(file.aheadTo, end)
    for (; p < target; p += PROBE_STEP) node.read(p, 1).catch(() => undefined) // the real read reports failures
    file.aheadTo = Math.max(file.aheadTo, p)
  }
}

/**
 * Reads [position, position + length) of a file some of whose chunks fail:
 * the longest prefix and the longest suffix that read are kept, the middle
 * reads as zeros. A FUSE read (128 KiB at most) spans at most two chunks of
 * the default chunker (512 KiB minimum), so the zeros cover exactly the
 * damaged chunk's bytes. Each probe of a damaged chunk fails fast (the
 * chunk loader remembers damaged chunks for a while).
 */
export async function readAroundDamage(node: FileNode, position: number, length: number): Promise<{ data: Buffer; zeroed: number }> {
  const end = Math.min(node.attr.size, position + length)
  if (position >= end) return { data: Buffer.alloc(0), zeroed: 0 }
  const reads = async (from: number, to: number): Promise<Buffer | null> => {
    if (from >= to) return Buffer.alloc(0)
    try {
      return await node.read(from, to - from)
    } catch {
      return null
    }
  }
  const whole = await reads(position, end)
  if (whole) return { data: whole, zeroed: 0 }
  // Largest m with [position, m) readable: readability of a prefix only drops as it grows.
  let lo = position
  let hi = end
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2)
    if (await reads(position, mid)) lo = mid
    else hi = mid
  }
  const prefixEnd = lo
  // Smallest n with [n, end) readable; the byte at prefixEnd is damaged, so n > prefixEnd.
  lo = prefixEnd
  hi = end
  while (hi - lo > 1) {
    const mid = lo + Math.floor((hi - lo) / 2)
    if (await reads(mid, end)) hi = mid
    else lo = mid
  }
  const suffixStart = hi
  const out = Buffer.alloc(end - position)
  ;(await reads(position, prefixEnd))?.copy(out, 0)
  ;(await reads(suffixStart, end))?.copy(out, suffixStart - position)
  return { data: out, zeroed: suffixStart - prefixEnd }
}
