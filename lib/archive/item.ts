/**
 * Archive items: one per directory entry, kept in its directory's tree
 * object. Names and link targets are raw bytes, never decoded.
 *
 * Encoded as a msgpack map with short keys (lib/FORMAT.md lists them), so
 * fields can be added without breaking older readers.
 */
import { CairnError } from '../errors.js'
import { fromPair, toPair } from '../time.js'

export type ItemKind = 'file' | 'dir' | 'symlink' | 'fifo' | 'chardev' | 'blockdev'

const KIND_CODES: Record<ItemKind, number> = { file: 0, dir: 1, symlink: 2, fifo: 3, chardev: 4, blockdev: 5 }
const KINDS_BY_CODE: ItemKind[] = ['file', 'dir', 'symlink', 'fifo', 'chardev', 'blockdev']

export interface ChunkRef {
  id: Buffer
  size: number
}

export interface Item {
  name: Buffer
  kind: ItemKind
  /** Full st_mode, type bits included. */
  mode: number
  uid: number
  gid: number
  user?: string
  group?: string
  mtimeNs: bigint
  atimeNs: bigint
  ctimeNs: bigint
  /** Bytes of content for files; 0 otherwise. */
  size: number
  /** Content of a file, in order. */
  chunks?: ChunkRef[]
  /** Symlink target bytes. */
  target?: Buffer
  /** Device number of char and block devices. */
  rdev?: number
  /** Extended attributes (POSIX ACLs included), names and values as bytes, sorted by name. */
  xattrs?: [Buffer, Buffer][]
  /** Files with the same hardlink group within one archive are one inode. */
  hardlink?: { group: number; nlink: number }
  /** For directories: id of the tree object holding the entries, and their number. */
  tree?: Buffer
  entries?: number
}

/** The all-zero chunk id stands for "size bytes of zeros" (holes); see chunk pipeline. */
export const ZERO_CHUNK_ID = Buffer.alloc(32)

export function encodeItem(item: Item): Record<string, unknown> {
  const out: Record<string, unknown> = {
    n: item.name,
    k: KIND_CODES[item.kind],
    m: item.mode,
    u: item.uid,
    g: item.gid,
    mt: toPair(item.mtimeNs),
    at: toPair(item.atimeNs),
    ct: toPair(item.ctimeNs),
  }
  if (item.user !== undefined) out.U = item.user
  if (item.group !== undefined) out.G = item.group
  if (item.kind === 'file') {
    out.s = item.size
    const chunks = item.chunks ?? []
    const ids = Buffer.allocUnsafe(chunks.length * 32)
    chunks.forEach((c, i) => c.id.copy(ids, i * 32))
    out.c = ids
    out.cs = chunks.map((c) => c.size)
  }
  if (item.target) out.l = item.target
  if (item.rdev !== undefined) out.r = item.rdev
  if (item.xattrs && item.xattrs.length > 0) out.x = item.xattrs
  if (item.hardlink) out.h = [item.hardlink.group, item.hardlink.nlink]
  if (item.tree) {
    out.t = item.tree
    out.e = item.entries ?? 0
  }
  return out
}

export function decodeItem(raw: unknown, where: string): Item {
  const r = raw as Record<string, unknown>
  const kind = KINDS_BY_CODE[r?.k as number]
  const name = r?.n
  if (!kind || !(name instanceof Uint8Array) || typeof r.m !== 'number') throw malformed(where)
  const item: Item = {
    name: Buffer.from(name),
    kind,
    mode: r.m,
    uid: (r.u as number) ?? 0,
    gid: (r.g as number) ?? 0,
    mtimeNs: fromPair(r.mt),
    atimeNs: fromPair(r.at),
    ctimeNs: fromPair(r.ct),
    size: 0,
  }
  if (typeof r.U === 'string') item.user = r.U
  if (typeof r.G === 'string') item.group = r.G
  if (kind === 'file') {
    const ids = r.c as Uint8Array
    const sizes = r.cs as number[]
    if (!(ids instanceof Uint8Array) || !Array.isArray(sizes) || ids.length !== sizes.length * 32) throw malformed(where)
    item.chunks = sizes.map((size, i) => ({ id: Buffer.from(ids.subarray(i * 32, i * 32 + 32)), size }))
    item.size = typeof r.s === 'number' ? r.s : 0
  }
  if (r.l instanceof Uint8Array) item.target = Buffer.from(r.l)
  if (typeof r.r === 'number') item.rdev = r.r
  if (Array.isArray(r.x)) item.xattrs = (r.x as [Uint8Array, Uint8Array][]).map(([k, v]) => [Buffer.from(k), Buffer.from(v)])
  if (Array.isArray(r.h)) item.hardlink = { group: r.h[0] as number, nlink: r.h[1] as number }
  if (r.t instanceof Uint8Array) {
    item.tree = Buffer.from(r.t)
    item.entries = (r.e as number) ?? 0
  }
  return item
}

function malformed(where: string): CairnError {
  return new CairnError('integrity', `an item in ${where} is malformed`, { hint: 'run cairn check' })
}
