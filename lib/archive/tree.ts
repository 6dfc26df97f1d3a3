/**
 * Tree objects: one per directory, so a reader loads one directory without
 * reading the archive, and an unchanged directory (same entries, same
 * chunks) is the same blob in the next archive and costs nothing.
 *
 * A directory of up to PAGE_ENTRIES entries is one leaf:
 *   msgpack {v: 1, e: [item, ...]}                  entries sorted by name bytes
 * A bigger one is split into leaves, named by a page list:
 *   msgpack {v: 1, p: [[firstName, leafId, count], ...]}
 * so a lookup loads the page list and one leaf, however big the directory.
 */
import { CairnError } from '../errors.js'
import { pack, unpack } from '../encoding/msgpack.js'
import { decodeItem, writeItem, type Item } from './item.js'
import { MsgpackWriter } from '../encoding/msgpack-writer.js'
import { readLeaf } from './leaf-reader.js'

export const PAGE_ENTRIES = 1024
const TREE_VERSION = 1

export interface PageRef {
  first: Buffer
  id: Buffer
  count: number
}

export type TreeObject = { kind: 'leaf'; entries: Item[] } | { kind: 'pages'; pages: PageRef[] }

/** One writer for every leaf: its buffer grows to the largest leaf written and stays (about 150 KiB for PAGE_ENTRIES plain files; more for items with large xattrs). */
const leafWriter = new MsgpackWriter()

/** A leaf's bytes are what msgpackr would write for { v, e: [item maps] } (test/leaf-writer.test.ts), without the maps. */
export function encodeLeaf(entries: readonly Item[]): Buffer {
  const w = leafWriter
  w.reset()
  w.map(2)
  w.string('v')
  w.number(TREE_VERSION)
  w.string('e')
  w.array(entries.length)
  for (const item of entries) writeItem(w, item)
  return w.take()
}

export function encodePageList(pages: readonly PageRef[]): Buffer {
  return pack({ v: TREE_VERSION, p: pages.map((p) => [p.first, p.id, p.count]) })
}

export function decodeTree(raw: Buffer, where: string): TreeObject {
  const entries = readLeaf(raw)
  if (entries) return { kind: 'leaf', entries }
  let value: Record<string, unknown>
  try {
    value = unpack(raw) as Record<string, unknown>
  } catch {
    throw malformed(where)
  }
  if (value?.v !== TREE_VERSION) throw malformed(where)
  if (Array.isArray(value.e)) return { kind: 'leaf', entries: value.e.map((e) => decodeItem(e, where)) }
  if (Array.isArray(value.p)) {
    return {
      kind: 'pages',
      pages: (value.p as [Uint8Array, Uint8Array, number][]).map(([first, id, count]) => ({ first: Buffer.from(first), id: Buffer.from(id), count })),
    }
  }
  throw malformed(where)
}

/** Index of the page that would hold `name` (pages are sorted by their first name). */
export function pageFor(pages: readonly PageRef[], name: Buffer): number {
  let lo = 0
  let hi = pages.length - 1
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1
    if (Buffer.compare(pages[mid]!.first, name) <= 0) lo = mid
    else hi = mid - 1
  }
  return lo
}

/** Binary search of a sorted leaf. */
export function findInLeaf(entries: readonly Item[], name: Buffer): Item | undefined {
  let lo = 0
  let hi = entries.length - 1
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1
    const c = Buffer.compare(entries[mid]!.name, name)
    if (c === 0) return entries[mid]
    if (c < 0) lo = mid + 1
    else hi = mid - 1
  }
  return undefined
}

function malformed(where: string): CairnError {
  return new CairnError('integrity', `the tree object of ${where} is malformed`, { hint: 'run cairn check' })
}
