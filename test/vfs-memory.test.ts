/**
 * What the mount's VFS nodes keep in memory. In a file of its own: it measures the process's ArrayBuffer
 * memory, which other tests' work in flight would change.
 */
import t from 'tap'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { newTestRepository } from './helpers/repo.js'
import { createArchiveFromEntries, RepositoryView, type DirNode, type EntrySpec } from '../dist/lib/index.js'

// A full collection that frees ArrayBuffers before it returns (by default they are swept concurrently, after it).
setFlagsFromString('--expose-gc')
setFlagsFromString('--no-concurrent-array-buffer-sweeping')
const gc = runInNewContext('gc') as () => void
const external = (): number => {
  gc()
  return process.memoryUsage().arrayBuffers
}
const b = (s: string): Buffer => Buffer.from(s, 'latin1')

t.test('directory nodes kept (as the kernel keeps inodes) do not pin the memory of the trees they came from', async (t) => {
  const repo = await newTestRepository()
  const dirs = 300
  const entries: EntrySpec[] = []
  for (let d = 0; d < dirs; d++) {
    entries.push({ path: `d${d}/sub/f`, kind: 'file', content: b('x') })
    for (let f = 0; f < 20; f++) entries.push({ path: `d${d}/file-${f}-with-a-name-of-some-length`, kind: 'file', content: b(`${d}.${f}`) })
  }
  await createArchiveFromEntries(repo, entries, { name: 'a' })
  // A tree cache of 64 KiB: the trees walked through are evicted, as in a long walk.
  const view = new RepositoryView(repo, { caches: { treeBytes: 64 * 1024 } })
  const root = (await view.lookup(b('a'))) as DirNode
  let kept: DirNode[] = []
  for (let d = 0; d < dirs; d++) {
    const dir = (await root.lookup(b(`d${d}`))) as DirNode
    await dir.list()
    kept.push((await dir.lookup(b('sub'))) as DirNode)
  }
  t.same((await kept[7]!.list()).map((e) => e.name.toString()), ['f'], 'a kept node still lists its directory')
  // Nothing runs between the two measurements (no await), so what they differ by is what the nodes kept.
  const withNodes = external()
  kept = []
  const pinned = withNodes - external()
  // Each node keeps only its 32-byte tree id (10 KB for 300); nodes that pinned the Buffer-pool slabs their
  // items were decoded into kept 1.2–2.4 MB.
  t.ok(pinned < 64 * 1024, `${dirs} directory nodes keep ${pinned} bytes of buffers`)
})

t.test('listing a directory of many pages holds only a few pages of it at once', async (t) => {
  const repo = await newTestRepository()
  const count = 16 * 1024 // 16 pages of 1,024 entries
  const name = (i: number): string => `file-${String(i).padStart(6, '0')}-with-a-name-of-some-length`
  const entries: EntrySpec[] = []
  for (let i = 0; i < count; i++) entries.push({ path: `big/${name(i)}`, kind: 'file', content: b(String(i)) })
  await createArchiveFromEntries(repo, entries, { name: 'a' })
  const view = new RepositoryView(repo, { caches: { treeBytes: 64 * 1024 } })
  const dir = (await ((await view.lookup(b('a'))) as DirNode).lookup(b('big'))) as DirNode
  // The first name of each page, watched: a page's items (and the names they hold) go once nothing keeps the
  // page. Heap sizes would not tell: tap's own bookkeeping of the listing's promises comes and goes with them.
  const firstNames: WeakRef<Buffer>[] = []
  let seen = 0
  let inOrder = true
  let pagesAlive = -1
  await dir.forEachEntry!((n) => {
    inOrder &&= n.toString() === name(seen)
    if (seen % 1024 === 0) firstNames.push(new WeakRef(n))
    if (++seen === count) {
      gc()
      pagesAlive = firstNames.filter((r) => r.deref() !== undefined).length
    }
  })
  t.equal(seen, count, 'every entry is visited')
  t.ok(inOrder, 'in name order')
  t.equal(firstNames.length, 16)
  // The page being read, and at most the 3 loaded ahead of it: those may have been read without a pause, and a
  // WeakRef made in the same pause keeps its target until the pause ends.
  t.ok(pagesAlive >= 1 && pagesAlive <= 4, `at the last entry, ${pagesAlive} of the 16 pages read are still held`)
  t.same((await dir.list()).map((e) => e.name.toString()).slice(-2), [name(count - 2), name(count - 1)], 'list() gives the same entries')
})
