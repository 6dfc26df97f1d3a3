/**
 * Archive items: one per directory entry, kept in its directory's tree
 * object. Names and link targets are raw bytes, never decoded.
 *
 * Encoded as a msgpack map with short keys (lib/FORMAT.md lists them), so
 * fields can be added without breaking older readers.
 */
import { CairnError } from '../errors.js'
import type { MsgpackWriter } from '../encoding/msgpack-writer.js'
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

/**
 * Writes the item as its msgpack map (keys in this order, the optional ones
 * only when present), straight into `w`: a backup writes one per entry.
 */
export function writeItem(w: MsgpackWriter, item: Item): void {
  const isFile = item.kind === 'file'
  const hasXattrs = item.xattrs !== undefined && item.xattrs.length > 0
  const fields = 8 + (item.user !== undefined ? 1 : 0) + (item.group !== undefined ? 1 : 0) + (isFile ? 3 : 0) + (item.target ? 1 : 0)
    + (item.rdev !== undefined ? 1 : 0) + (hasXattrs ? 1 : 0) + (item.hardlink ? 1 : 0) + (item.tree ? 2 : 0)
  w.map(fields)
  w.string('n')
  w.bytes(item.name)
  w.string('k')
  w.number(KIND_CODES[item.kind])
  w.string('m')
  w.number(item.mode)
  w.string('u')
  w.number(item.uid)
  w.string('g')
  w.number(item.gid)
  writeTime(w, 'mt', item.mtimeNs)
  writeTime(w, 'at', item.atimeNs)
  writeTime(w, 'ct', item.ctimeNs)
  if (item.user !== undefined) {
    w.string('U')
    w.string(item.user)
  }
  if (item.group !== undefined) {
    w.string('G')
    w.string(item.group)
  }
  if (isFile) {
    const chunks = item.chunks ?? []
    w.string('s')
    w.number(item.size)
    w.string('c')
    const ids = Buffer.allocUnsafe(chunks.length * 32)
    for (let i = 0; i < chunks.length; i++) chunks[i]!.id.copy(ids, i * 32)
    w.bytes(ids)
    w.string('cs')
    w.array(chunks.length)
    for (const c of chunks) w.number(c.size)
  }
  if (item.target) {
    w.string('l')
    w.bytes(item.target)
  }
  if (item.rdev !== undefined) {
    w.string('r')
    w.number(item.rdev)
  }
  if (hasXattrs) {
    w.string('x')
    w.array(item.xattrs!.length)
    for (const [name, value] of item.xattrs!) {
      w.array(2)
      w.bytes(name)
      w.bytes(value)
    }
  }
  if (item.hardlink) {
    w.string('h')
    w.array(2)
    w.number(item.hardlink.group)
    w.number(item.hardlink.nlink)
  }
  if (item.tree) {
    w.string('t')
    w.bytes(item.tree)
    w.string('e')
    w.number(item.entries ?? 0)
  }
}

function writeTime(w: MsgpackWriter, key: string, ns: bigint): void {
  const [seconds, nanos] = toPair(ns)
  w.string(key)
  w.array(2)
  w.number(seconds)
  w.number(nanos)
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
