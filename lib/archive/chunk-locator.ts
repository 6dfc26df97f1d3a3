/**
 * Turns a file's chunk list into ChunkPlans for the writer threads: where
 * each sealed chunk lies (pack file, offset, length), looked up in the chunk
 * index without a promise per chunk. When the backend has no local files,
 * the sealed chunks are fetched here instead.
 */
import { CairnError } from '../errors.js'
import type { Repository } from '../repo/repository.js'
import type { IndexState } from '../repo/index-cache.js'
import { packKey } from '../repo/pack-table.js'
import { ZERO_CHUNK_ID, type ChunkRef } from './item.js'
import type { ChunkPlan } from './writer-pool.js'

export class ChunkLocator {
  private readonly packFiles = new Map<number, string>()

  private constructor(
    private readonly repo: Repository,
    private state: IndexState,
  ) {}

  static async open(repo: Repository): Promise<ChunkLocator> {
    return new ChunkLocator(repo, await repo.index())
  }

  /** Plans for `chunks`; a promise only when the index had to be refreshed or chunks fetched. */
  plan(chunks: readonly ChunkRef[]): ChunkPlan[] | Promise<ChunkPlan[]> {
    const local = this.repo.backend.localPath !== undefined
    const plans: ChunkPlan[] = []
    for (const ref of chunks) {
      if (ref.id.equals(ZERO_CHUNK_ID)) {
        plans.push({ size: ref.size, zero: true })
        continue
      }
      const loc = this.state.index.get(ref.id)
      if (!loc || !local) return this.planSlowly(chunks)
      plans.push({ size: ref.size, id: ref.id, file: this.packFile(loc.pack), offset: loc.offset, length: loc.length, rawLength: loc.rawLength })
    }
    return plans
  }

  /**
   * An id the index does not know (another client committed since it was read), one it looks up in its
   * file (a repository opened for lookups), or a backend without local files.
   */
  private async planSlowly(chunks: readonly ChunkRef[]): Promise<ChunkPlan[]> {
    const plans: ChunkPlan[] = []
    for (const ref of chunks) {
      if (ref.id.equals(ZERO_CHUNK_ID)) {
        plans.push({ size: ref.size, zero: true })
        continue
      }
      let loc = await this.state.locate(ref.id)
      if (!loc) {
        this.state = await this.repo.refreshIndex()
        // A fresh index may number the packs differently.
        this.packFiles.clear()
        loc = await this.state.locate(ref.id)
      }
      if (!loc) {
        throw new CairnError('missing-object', `blob ${ref.id.toString('hex').slice(0, 16)}… is not in the index of ${this.repo.backend.location}`, {
          hint: 'the repository is damaged; run cairn check',
        })
      }
      if (this.repo.backend.localPath) {
        plans.push({ size: ref.size, id: ref.id, file: this.packFile(loc.pack), offset: loc.offset, length: loc.length, rawLength: loc.rawLength })
      } else {
        const sealed = await this.repo.backend.getRange(packKey(this.state.packs.idOf(loc.pack)), loc.offset, loc.length)
        plans.push({ size: ref.size, id: ref.id, sealed, rawLength: loc.rawLength })
      }
    }
    return plans
  }

  private packFile(pack: number): string {
    let file = this.packFiles.get(pack)
    if (file === undefined) {
      file = this.repo.backend.localPath!(packKey(this.state.packs.idOf(pack)))
      this.packFiles.set(pack, file)
    }
    return file
  }
}
