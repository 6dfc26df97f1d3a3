/**
 * Reads what an archive keeps about a filesystem entry: the lstat fields
 * (with nanosecond times), owner names and extended attributes.
 */
import type { BigIntStats } from 'node:fs'
import { getXattrSync, listXattrsSync } from '../native/posix.js'
import type { OwnerNames } from './owners.js'
import type { Item, ItemKind } from './item.js'

export function kindOf(st: BigIntStats): ItemKind | 'socket' | null {
  if (st.isFile()) return 'file'
  if (st.isDirectory()) return 'dir'
  if (st.isSymbolicLink()) return 'symlink'
  if (st.isFIFO()) return 'fifo'
  if (st.isCharacterDevice()) return 'chardev'
  if (st.isBlockDevice()) return 'blockdev'
  if (st.isSocket()) return 'socket'
  return null
}

export function itemFromStat(name: Buffer, kind: ItemKind, st: BigIntStats, owners: OwnerNames): Item {
  const uid = Number(st.uid)
  const gid = Number(st.gid)
  const item: Item = {
    name,
    kind,
    mode: Number(st.mode),
    uid,
    gid,
    mtimeNs: st.mtimeNs,
    atimeNs: st.atimeNs,
    ctimeNs: st.ctimeNs,
    size: 0,
  }
  const user = owners.user(uid)
  const group = owners.group(gid)
  if (user !== undefined) item.user = user
  if (group !== undefined) item.group = group
  if (kind === 'chardev' || kind === 'blockdev') item.rdev = Number(st.rdev)
  return item
}

/**
 * Extended attributes of `path` (not following symlinks), sorted by name.
 * Filesystems without xattr support simply have none.
 *
 * Synchronous on purpose: llistxattr is one metadata syscall of ~2 µs, while
 * a round trip through libuv's pool costs ~20 µs of main-thread time, and it
 * runs for every file of a backup. A backup process serves no FUSE requests,
 * so a microsecond's block of its event loop harms nothing.
 */
export function readXattrs(path: Buffer): [Buffer, Buffer][] {
  let names: Buffer[]
  try {
    names = listXattrsSync(path)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOTSUP' || code === 'EOPNOTSUPP') return []
    throw err
  }
  if (names.length === 0) return []
  const pairs: [Buffer, Buffer][] = []
  for (const name of names.sort(Buffer.compare)) {
    const value = getXattrSync(path, name)
    if (value !== null) pairs.push([name, value])
  }
  return pairs
}
