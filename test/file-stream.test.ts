/**
 * How a backup reads a big file: every byte as it is on disk, whatever the alignment of the memory it
 * reads into, and the page cache left as it was found (a cold file read straight from the disk where
 * the filesystem allows it, a cached one through the cache).
 */
import t from 'tap'
import { randomBytes } from 'node:crypto'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { scratch } from './helpers/cli.js'
import { cachedBytes, evictFromPageCache } from './helpers/page-cache.js'
import { FileStream, readsDirectlyOn } from '../dist/lib/archive/file-stream.js'
import { DIRECT_ALIGNMENT } from '../dist/lib/pipeline/windows.js'
import { misalignment } from '../dist/lib/native/posix.js'

const MiB = 1024 * 1024

/** A buffer whose byte `at` lies on an aligned address, as the pipeline's read windows are. */
function alignedBuffer(size: number, at = 0): Buffer {
  const raw = Buffer.alloc(size + 2 * DIRECT_ALIGNMENT)
  const start = (DIRECT_ALIGNMENT - misalignment(raw, DIRECT_ALIGNMENT)! + DIRECT_ALIGNMENT - at % DIRECT_ALIGNMENT) % DIRECT_ALIGNMENT
  return raw.subarray(start, start + size + DIRECT_ALIGNMENT)
}

/** Reads the whole file through `stream` in reads of `piece` bytes at `offset` of `buf`; the bytes read. */
async function readAll(stream: FileStream, buf: Buffer, offset: number, piece: number): Promise<Buffer> {
  const parts: Buffer[] = []
  for (;;) {
    const n = await stream.read(buf, offset, piece)
    if (n === 0) return Buffer.concat(parts)
    parts.push(Buffer.from(buf.subarray(offset, offset + n)))
  }
}

/** Whether this filesystem serves a read of the first block of `file` with O_DIRECT, tried here on its own. */
function directReadsWork(file: Buffer): boolean {
  let fd: number
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_DIRECT)
  } catch {
    return false
  }
  try {
    return fs.readSync(fd, alignedBuffer(DIRECT_ALIGNMENT), 0, DIRECT_ALIGNMENT, 0) === DIRECT_ALIGNMENT
  } catch {
    return false
  } finally {
    fs.closeSync(fd)
  }
}

/** A file of `size` random bytes in a scratch dir, written and then dropped from the page cache; null where pages cannot be dropped (tmpfs) or seen (no fincore). */
function coldFile(size: number): { file: Buffer; data: Buffer } | null {
  const file = path.join(scratch(), 'file')
  const data = randomBytes(size)
  fs.writeFileSync(file, data)
  evictFromPageCache(file)
  return cachedBytes(file) === 0 ? { file: Buffer.from(file), data } : null
}

const NO_DROPPING = 'pages cannot be dropped on this filesystem (tmpfs), or no fincore'

t.test('a cold file is read straight from the disk, byte for byte, and leaves nothing cached', async (t) => {
  const cold = coldFile(3 * MiB + 1234)
  if (!cold) return t.skip(NO_DROPPING)
  const { file, data } = cold
  if (!directReadsWork(file) || !readsDirectlyOn(fs.statfsSync(file).type)) return t.skip('not a local disk filesystem that takes O_DIRECT')
  const stream = await FileStream.open(file)
  t.ok(stream.readsDirectly, 'a cold file on a filesystem that takes O_DIRECT is read with it')
  const got = await readAll(stream, alignedBuffer(MiB), 0, MiB)
  t.ok(got.equals(data), 'every byte, the short last read included')
  t.equal(stream.size, data.length)
  t.ok(stream.readsDirectly, 'read directly to the end')
  t.ok(cachedBytes(file.toString())! <= 256 * 1024, 'the page cache holds at most what the first-page probe brought in')
  await stream.close()
  t.equal(cachedBytes(file.toString()), 0, 'and nothing once closed')
})

t.test('reads the disk cannot take directly go through the page cache, and are dropped behind', async (t) => {
  const cold = coldFile(6 * MiB + 99)
  if (!cold) return t.skip(NO_DROPPING)
  const { file, data } = cold
  const stream = await FileStream.open(file)
  // Memory one byte off a boundary, and reads of a length that is not a multiple of the block size.
  const got = await readAll(stream, alignedBuffer(MiB, 1), 1, 300_001)
  t.ok(got.equals(data), 'every byte')
  // Dropped in aligned steps of 2 MiB, the largest folio the page cache keeps a file in.
  t.ok(cachedBytes(file.toString())! <= 2 * MiB, 'what was read was dropped behind the reads')
  await stream.close()
  t.equal(cachedBytes(file.toString()), 0, 'nothing left once closed')
})

t.test('a cached file is read through the cache and stays there', async (t) => {
  const cold = coldFile(3 * MiB + 5)
  if (!cold) return t.skip(NO_DROPPING)
  const { file, data } = cold
  fs.readFileSync(file)
  const cached = cachedBytes(file.toString())
  const stream = await FileStream.open(file)
  t.notOk(stream.readsDirectly, 'not read from the disk again')
  t.ok((await readAll(stream, alignedBuffer(MiB), 0, MiB)).equals(data), 'every byte')
  await stream.close()
  t.ok(cachedBytes(file.toString())! >= 0.9 * cached!, 'still cached (nine tenths: the kernel may drop a page of its own accord)')
})

t.test('only local disk filesystems are read directly', async (t) => {
  for (const [name, type] of [['ext4', 0xef53], ['XFS', 0x58465342], ['Btrfs', 0x9123683e], ['F2FS', 0xf2f52010]] as const) {
    t.ok(readsDirectlyOn(type), `${name}: directly`)
  }
  for (const [name, type] of [['NFS', 0x6969], ['SMB', 0xfe534d42], ['FUSE', 0x65735546], ['tmpfs', 0x01021994], ['ZFS', 0x2fc12fc1]] as const) {
    t.notOk(readsDirectlyOn(type), `${name}: through the page cache`)
  }
})
