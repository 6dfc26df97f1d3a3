/**
 * Loads the whole content of many small files at once, for readers that
 * take a directory's files ahead of a program copying them (the mount's
 * SiblingContent). Each file comes back as a view of one buffer holding the
 * batch, or null when it could not be loaded this way: the caller then reads
 * it as usual, and that read reports whatever is wrong with it.
 *
 * When the repository's packs are local files and the native helper loads,
 * the batch is read, authenticated, decrypted and decoded on libuv's thread
 * pool in one call (lib/native/blob-batch.c), neighbouring blobs from one
 * read; the main thread only locates the chunks and hands the files out.
 * Otherwise each chunk goes through `chunks` (the reader's chunk cache) as
 * any read's would.
 *
 * Measured on the medium corpus's directory of 1,999 small files loaded
 * ahead while cp -a copies it: see bench/RESULTS.md, session 18.
 */
import type { Repository } from '../repo/repository.js'
import { BlobType } from '../repo/blob.js'
import { packKey } from '../repo/pack-table.js'
import { ZERO_CHUNK_ID, type ChunkRef } from '../archive/item.js'
import { nativeHelperLoads, openBlobBatch } from '../native/posix.js'
import { sealingScheme } from '../crypto/sealer.js'
import type { BlobCache } from './blob-cache.js'

export interface SmallFile {
  size: number
  chunks?: readonly ChunkRef[]
}

export type SmallFileLoader = (files: readonly SmallFile[]) => Promise<(Buffer | null)[]>

/** Bytes per blob in openBlobBatch's plan (blob-batch.c). */
const PLAN_RECORD = 64
const ID_AT = 32

/** The way is chosen at the first call (the native helper is loaded then, not by readers that never ask). */
export function smallFileLoader(repo: Repository, chunks: BlobCache<Buffer>): SmallFileLoader {
  let local: ((key: string) => string) | null | undefined
  return (files) => {
    if (local === undefined) local = repo.backend.localPath !== undefined && nativeHelperLoads() ? repo.backend.localPath.bind(repo.backend) : null
    return local === null ? Promise.all(files.map((f) => throughCache(chunks, f))) : loadNatively(repo, local, files)
  }
}

/** One chunk at a time through the chunk cache, joined. */
async function throughCache(chunks: BlobCache<Buffer>, file: SmallFile): Promise<Buffer | null> {
  const refs = file.chunks ?? []
  try {
    const parts = await Promise.all(refs.map((c) => (c.id.equals(ZERO_CHUNK_ID) ? Buffer.alloc(c.size) : chunks.get(c.id.toString('hex')))))
    const content = parts.length === 1 ? parts[0]! : Buffer.concat(parts)
    return content.length === file.size ? content : null
  } catch {
    return null
  }
}

interface Placed {
  file: number
  id: Buffer
  size: number
  at: number
  pack: number
  offset: number
  length: number
}

/** Where each file's chunks go in one buffer of `total` bytes, and where they lie in the packs (openBlobBatch's plan). */
interface Plan {
  paths: Buffer
  plan: Buffer
  placed: Placed[]
  bases: number[]
  total: number
  zeros: boolean
  /** Files that cannot be loaded so: their chunks do not add up to their size, or one is not in the index. */
  failed: Set<number>
}

async function planFor(repo: Repository, localPath: (key: string) => string, files: readonly SmallFile[]): Promise<Plan> {
  const state = await repo.index()
  const bases: number[] = []
  const failed = new Set<number>()
  const wanted: Omit<Placed, 'pack' | 'offset' | 'length'>[] = []
  let total = 0
  let zeros = false
  for (const [file, f] of files.entries()) {
    bases.push(total)
    let at = total
    for (const c of f.chunks ?? []) {
      if (c.id.equals(ZERO_CHUNK_ID)) zeros = true
      else wanted.push({ file, id: c.id, size: c.size, at })
      at += c.size
    }
    if (at - total !== f.size) failed.add(file) // chunks that do not add up to the file: its own read says so
    total = at
  }
  const locations = await Promise.all(wanted.map((w) => state.locate(w.id)))
  const placed: Placed[] = []
  for (const [i, w] of wanted.entries()) {
    const loc = locations[i]
    // Not in the index the reader holds (written since): its own read refreshes the index.
    if (loc === undefined) failed.add(w.file)
    else placed.push({ ...w, pack: loc.pack, offset: loc.offset, length: loc.length })
  }
  placed.sort((a, b) => a.pack - b.pack || a.offset - b.offset)
  const packs = new Map<number, number>()
  const paths: Buffer[] = []
  const plan = Buffer.alloc(placed.length * PLAN_RECORD)
  for (const [i, p] of placed.entries()) {
    let path = packs.get(p.pack)
    if (path === undefined) {
      packs.set(p.pack, (path = paths.length))
      paths.push(Buffer.from(`${localPath(packKey(state.packs.idOf(p.pack)))}\0`))
    }
    const r = i * PLAN_RECORD
    plan.writeUInt32LE(path, r)
    plan.writeUInt32LE(p.length, r + 4)
    plan.writeUInt32LE(p.offset % 2 ** 32, r + 8)
    plan.writeUInt32LE(Math.floor(p.offset / 2 ** 32), r + 12)
    plan.writeUInt32LE(p.size, r + 16)
    plan.writeUInt32LE(p.at, r + 20)
    plan[r + 24] = BlobType.Data
    p.id.copy(plan, r + ID_AT)
  }
  return { paths: Buffer.concat(paths), plan, placed, bases, total, zeros, failed }
}

async function loadNatively(repo: Repository, localPath: (key: string) => string, files: readonly SmallFile[]): Promise<(Buffer | null)[]> {
  const { paths, plan, placed, bases, total, zeros, failed } = await planFor(repo, localPath, files)
  const out = zeros ? Buffer.alloc(total) : Buffer.allocUnsafe(total)
  const lengths = new Int32Array(placed.length)
  if (placed.length > 0) {
    const km = repo.keyMaterial
    await openBlobBatch(sealingScheme(repo.encryption), km?.encKey ?? new Uint8Array(0), paths, plan, out, lengths)
  }
  for (const [i, p] of placed.entries()) if (lengths[i] !== p.size) failed.add(p.file)
  return files.map((f, file) => (failed.has(file) ? null : out.subarray(bases[file]!, bases[file]! + f.size)))
}
