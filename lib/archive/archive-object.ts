/**
 * The archive object: what `cairn info` shows and where the root tree is.
 * Stored as a blob of type Archive; the manifest points at it.
 *
 * msgpack {v: 1, name, host, user, cmd: [...], start: pair, end: pair,
 *          root: treeId, stats: {...}, chunker: {...}, comment}
 */
import { CairnError } from '../errors.js'
import { pack, unpack } from '../encoding/msgpack.js'
import { fromPair, toPair } from '../time.js'
import type { ChunkerParams } from '../chunker/fastcdc.js'

export interface ArchiveStats {
  files: number
  dirs: number
  others: number
  /** Sum of the sizes of the files. */
  originalSize: number
  /** Sum of the stored sizes of the chunks the files use. */
  compressedSize: number
  /** Bytes this archive added to the repository. */
  deduplicatedSize: number
}

export interface ArchiveMeta {
  name: string
  hostname: string
  username: string
  commandLine: string[]
  startNs: bigint
  endNs: bigint
  root: Buffer
  stats: ArchiveStats
  chunker: ChunkerParams
  comment: string
}

export function encodeArchive(a: ArchiveMeta): Buffer {
  return pack({
    v: 1,
    name: a.name,
    host: a.hostname,
    user: a.username,
    cmd: a.commandLine,
    start: toPair(a.startNs),
    end: toPair(a.endNs),
    root: a.root,
    stats: a.stats,
    chunker: a.chunker,
    comment: a.comment,
  })
}

export function decodeArchive(raw: Buffer, name: string): ArchiveMeta {
  const v = unpack(raw) as Record<string, unknown>
  if (v?.v !== 1 || !(v.root instanceof Uint8Array)) {
    throw new CairnError('integrity', `the archive object of ${JSON.stringify(name)} is malformed`, { hint: 'run cairn check' })
  }
  return {
    name: String(v.name),
    hostname: String(v.host ?? ''),
    username: String(v.user ?? ''),
    commandLine: (v.cmd as string[]) ?? [],
    startNs: fromPair(v.start),
    endNs: fromPair(v.end),
    root: Buffer.from(v.root),
    stats: v.stats as ArchiveStats,
    chunker: v.chunker as ChunkerParams,
    comment: String(v.comment ?? ''),
  }
}
