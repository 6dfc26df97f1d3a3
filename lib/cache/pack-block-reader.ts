/**
 * Reads small sealed blobs (trees) through aligned blocks of their pack,
 * keeping the most recently used blocks. A walk of an archive loads every
 * directory's tree one after the other, each a few KiB, and the trees of
 * neighbouring directories lie close together in a few metadata packs
 * (see pack-layout.test.ts): one 128 KiB read brings in dozens of them, and
 * most loads then cost a copy instead of a storage read and a trip through
 * libuv's thread pool, which is where a walk waited.
 *
 * Measured on the medium corpus's archive (4,977 directories, 5,013 trees,
 * 8.2 MB sealed), walking it in process: 3,391 storage reads of 11.5 MB
 * through CoalescingLoader, 129 reads of 14.9 MB through 128 KiB blocks and
 * a 4 MiB cache (bench/RESULTS.md, session 4).
 *
 * Bigger blobs are read alone. A block that fails to read fails only the
 * loads that needed it; nothing failed is kept.
 */
import type { Repository } from '../repo/repository.js'
import { packKey } from '../repo/pack-table.js'
import { CairnError } from '../errors.js'
import type { SealedBlob } from './coalescing-loader.js'
import { BlobType } from '../repo/blob.js'

/** Block size: a few dozen trees of an average directory. */
const BLOCK_BYTES = 128 * 1024
/** Blobs above this are read alone and not kept. */
const ALONE_ABOVE = BLOCK_BYTES / 2

interface Location {
  pack: number
  offset: number
  length: number
  rawLength: number
}

export class PackBlockReader {
  private readonly blocks = new Map<string, Buffer>()
  private readonly loading = new Map<string, Promise<Buffer>>()
  private readonly packSizes = new Map<number, Promise<number>>()
  private readonly maxBlocks: number

  /** Keeps at most `maxBytes` of blocks (at least one). */
  constructor(private readonly repo: Repository, maxBytes: number) {
    this.maxBlocks = Math.max(1, Math.floor(maxBytes / BLOCK_BYTES))
  }

  /** The sealed bytes of blob `id`, in a buffer of their own (the caller may decrypt them in place). */
  async load(id: Uint8Array): Promise<SealedBlob> {
    const state = await this.repo.index()
    const loc = await state.locate(id)
    if (!loc || loc.length > ALONE_ABOVE) return this.repo.loadSealedBlob(id) // missing: the repository refreshes its index or says so
    const key = packKey(state.packs.idOf(loc.pack))
    const sealed = Buffer.allocUnsafe(loc.length)
    const first = Math.floor(loc.offset / BLOCK_BYTES)
    const last = Math.floor((loc.offset + loc.length - 1) / BLOCK_BYTES)
    for (let b = first; b <= last; b++) {
      const block = this.cached(`${loc.pack}:${b}`) ?? (await this.readBlock(key, loc, b))
      const blockStart = b * BLOCK_BYTES
      const from = Math.max(loc.offset, blockStart)
      const to = Math.min(loc.offset + loc.length, blockStart + block.length)
      if (to <= from) throw truncated(key)
      block.copy(sealed, from - loc.offset, from - blockStart, to - blockStart)
    }
    return { sealed, rawLength: loc.rawLength }
  }

  /** A kept block, now the most recently used. */
  private cached(name: string): Buffer | undefined {
    const block = this.blocks.get(name)
    if (block) {
      this.blocks.delete(name)
      this.blocks.set(name, block)
    }
    return block
  }

  private readBlock(key: string, loc: Location, b: number): Promise<Buffer> {
    const name = `${loc.pack}:${b}`
    let pending = this.loading.get(name)
    if (!pending) {
      pending = (async () => {
        const size = await this.packSize(key, loc.pack)
        const start = b * BLOCK_BYTES
        return this.repo.backend.getRange(key, start, Math.max(0, Math.min(BLOCK_BYTES, size - start)))
      })()
      this.loading.set(name, pending)
      pending.then((block) => this.keep(name, block), () => undefined).finally(() => this.loading.delete(name))
    }
    return pending
  }

  private packSize(key: string, pack: number): Promise<number> {
    let size = this.packSizes.get(pack)
    if (!size) {
      size = this.repo.backend.stat(key).then((info) => {
        if (!info) throw new CairnError('missing-object', `pack ${key} is missing from ${this.repo.backend.location}`, { hint: 'the repository is damaged; run cairn check' })
        return info.size
      })
      size.catch(() => this.packSizes.delete(pack))
      this.packSizes.set(pack, size)
    }
    return size
  }

  private keep(name: string, block: Buffer): void {
    this.blocks.delete(name)
    this.blocks.set(name, block)
    while (this.blocks.size > this.maxBlocks) this.blocks.delete(this.blocks.keys().next().value!)
  }
}

function truncated(key: string): CairnError {
  return new CairnError('integrity', `object ${key} is shorter than its index says (truncated?)`, { hint: 'the repository is damaged; run cairn check' })
}

/** A tree loader for makeReaderCaches: reads through a PackBlockReader keeping `cacheBytes`, opens in place. */
export function blockedTreeLoader(repo: Repository, cacheBytes: number): (id: Buffer) => Promise<Buffer> {
  const reader = new PackBlockReader(repo, cacheBytes)
  return async (id) => {
    const { sealed, rawLength } = await reader.load(id)
    return repo.openBlobInPlace(BlobType.Tree, id, sealed, rawLength)
  }
}
