/** Damages a repository the way bit rot would: one byte of one stored blob. */
import { promises as fs } from 'node:fs'
import * as path from 'node:path'

/** What the helper needs of a Repository (from lib or dist alike). */
interface IndexedRepository {
  index(): Promise<{ locate(id: Uint8Array): Promise<{ pack: number; offset: number; length: number } | undefined>; packs: { idOf(n: number): string } }>
}

/** Flips one byte in the middle of blob `id` in its pack under `root`; returns the pack file. */
export async function damageBlob(repo: IndexedRepository, root: string, id: Uint8Array): Promise<string> {
  const state = await repo.index()
  const loc = (await state.locate(id))!
  const packId = state.packs.idOf(loc.pack)
  const file = path.join(root, 'data', packId.slice(0, 2), packId)
  const handle = await fs.open(file, 'r+')
  try {
    const at = loc.offset + Math.floor(loc.length / 2)
    const byte = Buffer.alloc(1)
    await handle.read(byte, 0, 1, at)
    byte[0]! ^= 0x55
    await handle.write(byte, 0, 1, at)
  } finally {
    await handle.close()
  }
  return file
}
