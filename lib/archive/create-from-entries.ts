/**
 * Creating an archive from entries a program supplies (an async iterable of
 * path, metadata and content), for Node programs that back up something
 * other than a directory tree: a database dump, objects from an API.
 *
 * Content is stored as each entry arrives; the entries' metadata is held
 * until the end to build the directory trees (about 200 bytes an entry),
 * so entries may come in any order. Missing parent directories are made
 * with mode 0755 and the archive's start time.
 */
import * as os from 'node:os'
import { CairnError } from '../errors.js'
import { nowNs } from '../time.js'
import { parseCompressionSpec, type CompressionSpec } from '../compress/codec.js'
import type { Repository } from '../repo/repository.js'
import { RepositoryWriter } from '../repo/writer.js'
import { BlobType } from '../repo/blob.js'
import { ChunkPipeline } from '../pipeline/chunk-pipeline.js'
import { iterableSource } from '../pipeline/iterable-source.js'
import { DirectoryBuilder } from './directory-builder.js'
import { encodeArchive, type ArchiveMeta, type ArchiveStats } from './archive-object.js'
import type { ChunkRef, Item, ItemKind } from './item.js'
import { splitPath } from './reader.js'
import { DEFAULT_COMPRESSION } from './create.js'

export interface EntrySpec {
  /** '/'-separated path inside the archive, no leading '/', no '.' or '..' parts. */
  path: string | Buffer
  kind: ItemKind
  /** Permission bits (the type bits follow from `kind`). Default 0644 for files, 0755 for directories. */
  mode?: number
  uid?: number
  gid?: number
  user?: string
  group?: string
  mtimeNs?: bigint
  atimeNs?: bigint
  ctimeNs?: bigint
  /** Symlink target. */
  target?: string | Buffer
  rdev?: number
  xattrs?: [Buffer, Buffer][]
  /** File content. */
  content?: Uint8Array | AsyncIterable<Uint8Array>
}

export interface EntriesOptions {
  name: string
  compression?: CompressionSpec | string
  comment?: string
  signal?: AbortSignal
}

const TYPE_BITS: Record<ItemKind, number> = { file: 0o100000, dir: 0o040000, symlink: 0o120000, fifo: 0o010000, chardev: 0o020000, blockdev: 0o060000 }

interface DirState {
  item: Item | null
  children: Map<string, DirState | Promise<Item>>
}

export async function createArchiveFromEntries(repo: Repository, entries: AsyncIterable<EntrySpec> | Iterable<EntrySpec>, options: EntriesOptions): Promise<{ archive: ArchiveMeta; id: Buffer }> {
  if ((await repo.archives()).some((a) => a.name === options.name)) {
    throw new CairnError('archive-exists', `an archive named ${JSON.stringify(options.name)} already exists`, { hint: 'choose another name' })
  }
  const compression = typeof options.compression === 'string' ? parseCompressionSpec(options.compression) : options.compression ?? parseCompressionSpec(DEFAULT_COMPRESSION)
  const writer = await RepositoryWriter.start(repo, { signal: options.signal })
  const pipeline = new ChunkPipeline(writer, { compression })
  const startNs = nowNs()
  const stats: ArchiveStats = { files: 0, dirs: 0, others: 0, originalSize: 0, compressedSize: 0, deduplicatedSize: 0 }
  const root: DirState = { item: null, children: new Map() }
  try {
    for await (const spec of entries) {
      options.signal?.throwIfAborted()
      const parts = splitPath(Buffer.isBuffer(spec.path) ? spec.path : Buffer.from(spec.path))
      if (parts.length === 0 || parts.some((p) => p.equals(DOT) || p.equals(DOTDOT))) {
        throw new CairnError('unsafe-path', `entry path ${JSON.stringify(String(spec.path))} is empty or contains '.' or '..'`)
      }
      let dir = root
      for (const part of parts.slice(0, -1)) dir = childDir(dir, part, startNs)
      const name = parts[parts.length - 1]!
      const item = baseItem(name, spec, startNs)
      if (spec.kind === 'dir') {
        stats.dirs++
        childDir(dir, name, startNs).item = item
      } else if (spec.kind === 'file') {
        stats.files++
        const { stored, size } = await storeContent(pipeline, spec.content)
        dir.children.set(name.toString('latin1'), stored.then((chunks) => {
          stats.originalSize += size()
          for (const c of chunks) stats.compressedSize += writer.storedLength(c.id)
          return { ...item, chunks, size: size() }
        }))
      } else {
        stats.others++
        dir.children.set(name.toString('latin1'), Promise.resolve(item))
      }
    }
    const tree = await buildTree(root, writer, compression)
    stats.deduplicatedSize = writer.stats.newBytes
    const archive: ArchiveMeta = {
      name: options.name,
      hostname: os.hostname(),
      username: os.userInfo().username,
      commandLine: [],
      startNs,
      endNs: nowNs(),
      root: tree.tree,
      stats,
      chunker: repo.config.chunker,
      comment: options.comment ?? '',
    }
    const id = await writer.storeBlob(BlobType.Archive, encodeArchive(archive), compression)
    await writer.commit({ name: archive.name, id, time: startNs })
    return { archive, id }
  } catch (err) {
    await writer.abort()
    throw err
  } finally {
    await pipeline.close()
  }
}

const DOT = Buffer.from('.')
const DOTDOT = Buffer.from('..')

function childDir(parent: DirState, name: Buffer, timeNs: bigint): DirState {
  const key = name.toString('latin1')
  const existing = parent.children.get(key)
  if (existing && !(existing instanceof Promise)) return existing
  const dir: DirState = { item: null, children: new Map() }
  dir.item = baseItem(name, { path: name, kind: 'dir' }, timeNs)
  parent.children.set(key, dir)
  return dir
}

function baseItem(name: Buffer, spec: EntrySpec, timeNs: bigint): Item {
  const perm = spec.mode ?? (spec.kind === 'dir' ? 0o755 : 0o644)
  const item: Item = {
    name,
    kind: spec.kind,
    mode: TYPE_BITS[spec.kind] | (perm & 0o7777),
    uid: spec.uid ?? 0,
    gid: spec.gid ?? 0,
    mtimeNs: spec.mtimeNs ?? timeNs,
    atimeNs: spec.atimeNs ?? spec.mtimeNs ?? timeNs,
    ctimeNs: spec.ctimeNs ?? spec.mtimeNs ?? timeNs,
    size: 0,
  }
  if (spec.user !== undefined) item.user = spec.user
  if (spec.group !== undefined) item.group = spec.group
  if (spec.target !== undefined) item.target = Buffer.isBuffer(spec.target) ? spec.target : Buffer.from(spec.target)
  if (spec.rdev !== undefined) item.rdev = spec.rdev
  if (spec.xattrs?.length) item.xattrs = [...spec.xattrs].sort((a, b) => Buffer.compare(a[0], b[0]))
  return item
}

async function storeContent(pipeline: ChunkPipeline, content: EntrySpec['content']): Promise<{ stored: Promise<ChunkRef[]>; size: () => number }> {
  const source: AsyncIterable<Uint8Array> = content === undefined ? (async function* () {})() : content instanceof Uint8Array ? (async function* () { yield content })() : content
  const { read, bytesRead } = iterableSource(source)
  const { stored } = await pipeline.storeStream(read)
  return { stored, size: bytesRead }
}

async function buildTree(dir: DirState, writer: RepositoryWriter, compression: CompressionSpec): Promise<{ tree: Buffer; entries: number }> {
  const builder = new DirectoryBuilder(writer, compression)
  const names = [...dir.children.keys()].sort((a, b) => Buffer.compare(Buffer.from(a, 'latin1'), Buffer.from(b, 'latin1')))
  for (const key of names) {
    const child = dir.children.get(key)!
    if (child instanceof Promise) {
      builder.add(child)
    } else {
      const sub = await buildTree(child, writer, compression)
      builder.add(Promise.resolve({ ...child.item!, tree: sub.tree, entries: sub.entries }))
    }
  }
  return builder.finish()
}
