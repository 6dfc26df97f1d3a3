/**
 * What an archive keeps about a filesystem entry, from what a directory
 * scan (lib/native/scan.ts) reports: the lstat fields with nanosecond times,
 * owner names, extended attributes.
 */
import { constants as fsc } from 'node:fs'
import type { EntryStat } from '../native/scan.js'
import type { PosixError } from '../native/posix.js'
import type { OwnerNames } from './owners.js'
import type { Item, ItemKind } from './item.js'

const KINDS = new Map<number, ItemKind | 'socket'>([
  [fsc.S_IFREG, 'file'],
  [fsc.S_IFDIR, 'dir'],
  [fsc.S_IFLNK, 'symlink'],
  [fsc.S_IFIFO, 'fifo'],
  [fsc.S_IFCHR, 'chardev'],
  [fsc.S_IFBLK, 'blockdev'],
  [fsc.S_IFSOCK, 'socket'],
])

export function kindOf(mode: number): ItemKind | 'socket' | null {
  return KINDS.get(mode & fsc.S_IFMT) ?? null
}

export function isDirectory(st: EntryStat): boolean {
  return (st.mode & fsc.S_IFMT) === fsc.S_IFDIR
}

export function itemFromStat(name: Buffer, kind: ItemKind, st: EntryStat, owners: OwnerNames): Item {
  const item: Item = {
    name,
    kind,
    mode: st.mode,
    uid: st.uid,
    gid: st.gid,
    mtimeNs: st.mtimeNs,
    atimeNs: st.atimeNs,
    ctimeNs: st.ctimeNs,
    size: 0,
  }
  const user = owners.user(st.uid)
  const group = owners.group(st.gid)
  if (user !== undefined) item.user = user
  if (group !== undefined) item.group = group
  if (kind === 'chardev' || kind === 'blockdev') item.rdev = st.rdev
  return item
}

/** A filesystem that keeps no xattrs answers ENOTSUP: that is "none", not an error. */
export function xattrsOrNone(xattrs: [Buffer, Buffer][] | PosixError): [Buffer, Buffer][] | PosixError {
  if (xattrs instanceof Error && (xattrs.code === 'ENOTSUP' || xattrs.code === 'EOPNOTSUPP')) return []
  return xattrs
}
