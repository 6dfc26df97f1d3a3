/**
 * The files cache's table with keys built on purpose: colliding home slots,
 * probe runs that wrap past the table's end, growth, arena rebuilds. Every
 * step is checked against a Map.
 */
import t from 'tap'
import { COLUMNS, FileTable, type ColumnName, type FileIdentity } from '../lib/archive/files-table.js'
import type { ChunkRef } from '../lib/archive/item.js'

interface Expected { identity: FileIdentity; chunks: ChunkRef[] }

/** Deterministic pseudo-random numbers (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32
  }
}

function keyOf(words: number[]): Uint32Array {
  return Uint32Array.from(words)
}

function expected(n: number, chunkCount: number): Expected {
  const chunks = Array.from({ length: chunkCount }, (_, c) => ({ id: Buffer.alloc(32, (n + c) % 256), size: n * 10 + c }))
  return { identity: { ino: BigInt(n) + 2n ** 63n, size: n + 0.5 * (n % 2) * 2 ** 40, mtimeNs: BigInt(n) * 1_000_000_007n - 2n ** 62n, ctimeNs: BigInt(-n) }, chunks }
}

/** Every key of `model` found with its identity and chunks, and the table no larger. */
function check(table: FileTable, model: Map<string, [Uint32Array, Expected]>, absent: Uint32Array[] = []): string | null {
  if (table.size !== model.size) return `size ${table.size}, expected ${model.size}`
  for (const [name, [key, e]] of model) {
    const row = table.find(key)
    if (row < 0) return `${name} not found`
    if (!table.sameFile(row, e.identity)) return `${name} has another identity`
    const chunks = table.chunks(row)
    if (chunks.length !== e.chunks.length || chunks.some((c, i) => !c.id.equals(e.chunks[i].id) || c.size !== e.chunks[i].size)) return `${name} has other chunks`
  }
  for (const key of absent) if (table.find(key) >= 0) return `deleted key ${key.join(',')} still found`
  return null
}

t.test('deletions in the middle of probe runs, some wrapping past the end, leave every other key findable', async (t) => {
  const next = random(1)
  // 1024 slots: homes 1020–1023 and 0–3 form one run across the end; a second cluster sits at 500.
  const homes = [1020, 1021, 1022, 1023, 0, 1, 2, 3, 500, 501]
  const pool = Array.from({ length: 300 }, (_, i) => keyOf([homes[i % homes.length] + 1024 * Math.floor(next() * 1000), i, 7, 7]))
  const table = new FileTable()
  const model = new Map<string, [Uint32Array, Expected]>()
  let failure: string | null = null
  for (let step = 0; step < 10_000 && !failure; step++) {
    const key = pool[Math.floor(next() * pool.length)]
    const name = key.join(',')
    if (next() < 0.45) {
      const wasThere = model.delete(name)
      failure = table.delete(key) !== wasThere ? `delete said ${!wasThere}` : check(table, model, [key])
    } else {
      const e = expected(step, Math.floor(next() * 4))
      table.set(key, e.identity, e.chunks)
      model.set(name, [key, e])
      failure = check(table, model)
    }
    if (failure) failure = `step ${step}: ${failure}`
  }
  t.equal(failure, null)
  t.ok(model.size > 100, `runs were long (${model.size} keys in ~10 homes at the end)`)
})

t.test('growth across doublings keeps every entry', async (t) => {
  const next = random(2)
  const table = new FileTable()
  const model = new Map<string, [Uint32Array, Expected]>()
  const checkedAt: number[] = []
  for (let n = 1; n <= 13_000; n++) {
    const key = keyOf([next() * 2 ** 32, next() * 2 ** 32, n, 0])
    const e = expected(n, n % 3)
    table.set(key, e.identity, e.chunks)
    model.set(key.join(','), [key, e])
    // Just past each doubling (3/4 of 1024, 2048, …, 16384 slots).
    if ([769, 1537, 3073, 6145, 12289].includes(n)) {
      t.equal(check(table, model), null, `after ${n} entries`)
      checkedAt.push(n)
    }
  }
  t.equal(checkedAt.length, 5)
})

t.test('replacing entries with other chunk lists rebuilds the arena without losing live chunks', async (t) => {
  const next = random(3)
  const table = new FileTable()
  const model = new Map<string, [Uint32Array, Expected]>()
  const keys = Array.from({ length: 500 }, (_, i) => keyOf([next() * 2 ** 32, i, 1, 2]))
  const early = expected(0, 3)
  table.set(keys[0], early.identity, early.chunks)
  const handedOut = table.chunks(table.find(keys[0])) // views of the first arena
  for (let round = 0; round < 20; round++) {
    for (const key of keys) {
      const e = expected(round * 1000 + key[1], Math.floor(next() * 6))
      table.set(key, e.identity, e.chunks)
      model.set(key.join(','), [key, e])
    }
  }
  t.equal(check(table, model), null)
  t.same(handedOut.map((c) => [c.id, c.size]), early.chunks.map((c) => [c.id, c.size]), 'chunk ids handed out earlier still read the same')
})

t.test('an entry replaced just as the arena is full does not carry its old chunks into the new arena', async (t) => {
  const table = new FileTable()
  const key = keyOf([9, 9, 9, 9])
  const big = expected(1, 64) // fills the smallest arena
  table.set(key, big.identity, big.chunks)
  const small = expected(2, 1)
  table.set(key, small.identity, small.chunks)
  t.equal(check(table, new Map([['k', [key, small]]])), null)
})

/** A table of `count` entries with spread keys and 0 to `maxChunks - 1` chunks each, and its model. */
function filled(count: number, maxChunks: number): { table: FileTable; model: Map<string, [Uint32Array, Expected]> } {
  const table = new FileTable()
  const model = new Map<string, [Uint32Array, Expected]>()
  for (let n = 0; n < count; n++) {
    const key = keyOf([n * 2654435761, n, 3, 4])
    const e = expected(n, n % maxChunks)
    table.set(key, e.identity, e.chunks)
    model.set(key.join(','), [key, e])
  }
  return { table, model }
}

type Columns = Record<ColumnName, Buffer> & { count: number }

/** The columns a save writes (savedColumn), each joined whole. */
function columnsOf(table: FileTable, ttl: number): Columns {
  const parts = new Map<ColumnName, Buffer[]>(COLUMNS.map(([name]) => [name, []]))
  for (const [name] of COLUMNS) for (const bytes of table.savedColumn(name, ttl, Buffer.allocUnsafeSlow(1024 * 1024))) parts.get(name)!.push(Buffer.from(bytes))
  const columns = Object.fromEntries([...parts].map(([name, list]) => [name, Buffer.concat(list)])) as Record<ColumnName, Buffer>
  return { ...columns, count: table.savedCounts(ttl).count }
}

/** The table a load makes of whole columns (FileTable.loader), or null where the columns do not fit together. */
function tableOf(c: Columns): FileTable | null {
  if (c.chunkIds.length % 32 !== 0) return null
  const chunks = c.chunkIds.length / 32
  const loader = FileTable.loader(c.count, chunks)
  for (const [name, width, per] of COLUMNS) {
    if (c[name].length !== width * (per === 'entry' ? c.count : chunks)) return null
    loader.feed(name, 0, c[name])
  }
  return loader.finish()
}

t.test('columns: a round trip keeps entries and ages; columns that disagree are refused', async (t) => {
  const { table, model } = filled(2000, 4)
  const loaded = tableOf(columnsOf(table, 20))!
  t.equal(check(loaded, model), null)
  // Unseen after loading: one save ages every entry; with ttl 1 none is kept.
  const agedOnce = tableOf(columnsOf(loaded, 2))!
  t.equal(agedOnce.size, 2000, 'aged once: kept at ttl 2')
  t.equal(columnsOf(agedOnce, 2).count, 0, 'aged twice: gone at ttl 2')
  t.equal(columnsOf(loaded, 1).count, 0)

  const columns = columnsOf(table, 20)
  t.equal(tableOf({ ...columns, count: columns.count - 1 }), null, 'count that disagrees')
  t.equal(tableOf({ ...columns, chunkIds: columns.chunkIds.subarray(32) }), null, 'a chunk id short')
  const keys = Buffer.from(columns.keys)
  keys.copy(keys, 16, 0, 16)
  t.equal(tableOf({ ...columns, keys }), null, 'the same key twice')
})

t.test('columns fed a few values at a time, in any piece sizes, load the same table; chunk counts that do not add up are refused', async (t) => {
  const { table, model } = filled(500, 5)
  const columns = columnsOf(table, 20)
  const chunks = columns.chunkIds.length / 32
  const feedAll = (loader: ReturnType<typeof FileTable.loader>, counts: Uint8Array): void => {
    for (const [name, width, per] of COLUMNS) {
      const bytes = name === 'chunkCounts' ? counts : columns[name]
      const values = per === 'entry' ? columns.count : chunks
      for (let first = 0, step = 1; first < values; first += step, step = (step % 13) + 1) {
        loader.feed(name, first, bytes.subarray(first * width, Math.min(values, first + step) * width))
      }
    }
  }
  const loader = FileTable.loader(columns.count, chunks)
  feedAll(loader, columns.chunkCounts)
  t.equal(check(loader.finish()!, model), null, 'the same entries and chunks')

  const counts = Buffer.from(columns.chunkCounts)
  counts.writeUInt32LE(counts.readUInt32LE(4) + 1, 4)
  const miscounted = FileTable.loader(columns.count, chunks)
  feedAll(miscounted, counts)
  t.equal(miscounted.finish(), null, 'one entry claims a chunk more than there are')
})

t.test('chunks the table cannot hold are refused before anything changes', async (t) => {
  const table = new FileTable()
  const key = keyOf([1, 2, 3, 4])
  const e = expected(1, 1)
  t.throws(() => table.set(key, e.identity, [{ id: Buffer.alloc(32), size: 2 ** 32 }]), RangeError)
  t.throws(() => table.set(key, e.identity, [{ id: Buffer.alloc(16), size: 1 }]), RangeError)
  t.equal(table.size, 0)
})
