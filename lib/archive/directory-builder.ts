/**
 * Collects a directory's entries, in name order, into tree objects while the
 * walk goes on: a full page is stored as soon as its items are complete, so
 * a directory of a million entries never sits in memory whole.
 */
import type { CompressionSpec } from '../compress/codec.js'
import { BlobType } from '../repo/blob.js'
import type { RepositoryWriter } from '../repo/writer.js'
import type { Item } from './item.js'
import { encodeLeaf, encodePageList, PAGE_ENTRIES, type PageRef } from './tree.js'

export class DirectoryBuilder {
  private page: Promise<Item | null>[] = []
  private readonly pages: Promise<PageRef | null>[] = []

  /** `onItem` sees each entry once its page is complete (a tally, without a promise per entry for it). */
  constructor(private readonly writer: RepositoryWriter, private readonly compression: CompressionSpec, private readonly onItem?: (item: Item) => void) {}

  /** Adds the next entry (names must come in ascending byte order); null stands for an entry that was skipped. */
  add(item: Promise<Item | null>): void {
    item.catch(() => undefined) // rejections surface in finish(); until then they are not unhandled
    this.page.push(item)
    if (this.page.length === PAGE_ENTRIES) this.closePage()
  }

  private closePage(): void {
    const items = this.page
    this.page = []
    const stored = Promise.all(items).then(async (maybe) => {
      const entries = this.complete(maybe)
      if (entries.length === 0) return null
      return {
        first: entries[0]!.name,
        id: await this.writer.storeBlob(BlobType.Tree, encodeLeaf(entries), this.compression),
        count: entries.length,
      }
    })
    stored.catch(() => undefined) // awaited in finish()
    this.pages.push(stored)
  }

  private complete(maybe: (Item | null)[]): Item[] {
    const entries = maybe.filter((e): e is Item => e !== null)
    if (this.onItem) for (const e of entries) this.onItem(e)
    return entries
  }

  /** Stores the directory's tree; returns its id and entry count. */
  async finish(): Promise<{ tree: Buffer; entries: number }> {
    if (this.pages.length === 0) {
      const entries = this.complete(await Promise.all(this.page))
      return { tree: await this.writer.storeBlob(BlobType.Tree, encodeLeaf(entries), this.compression), entries: entries.length }
    }
    if (this.page.length > 0) this.closePage()
    const pages = (await Promise.all(this.pages)).filter((p): p is PageRef => p !== null)
    const entries = pages.reduce((n, p) => n + p.count, 0)
    if (pages.length === 1) return { tree: pages[0]!.id, entries }
    return { tree: await this.writer.storeBlob(BlobType.Tree, encodePageList(pages), this.compression), entries }
  }
}
