// The addon's directory scan (what a backup reads of every entry) against what
// Node's fs and the xattr calls say, and the scanner that reads directories ahead.
// Runs in a temp dir under os.tmpdir() (/tmp here: ext4, with user xattrs).
import * as fs from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { setTimesSync, setXattrSync } from '../lib/native/posix.js'
import { scanDirectory, type EntryStat } from '../lib/native/scan.js'
import { DirectoryScanner } from '../lib/archive/directory-scanner.js'

const root = fs.mkdtempSync(join(tmpdir(), 'cairn-scan-'))
t.teardown(() => fs.rmSync(root, { recursive: true, force: true }))

const dir = Buffer.from(join(root, 'd'))
const at = (name: Buffer | string): Buffer => Buffer.concat([dir, Buffer.from('/'), Buffer.from(name)])
const latin1 = Buffer.from([0x63, 0x61, 0x66, 0xe9]) // "café" in Latin-1: not UTF-8
const long = Buffer.alloc(255, 0x78)
fs.mkdirSync(dir)
fs.writeFileSync(at('b-file'), 'twelve bytes')
fs.writeFileSync(at(latin1), '')
fs.writeFileSync(at(long), 'x')
fs.mkdirSync(at('a-dir'))
fs.symlinkSync(Buffer.from([0x2e, 0x2f, 0xff, 0xfe]), at('c-link'))
fs.linkSync(at('b-file'), at('d-hardlink'))
setXattrSync(at('b-file'), Buffer.from('user.zeta'), Buffer.from([0, 1, 2]))
setXattrSync(at('b-file'), Buffer.from('user.alpha'), Buffer.from('first'))
setTimesSync(at('b-file'), -1_500_000_001n, 123_456_789_012_345_678n)

function asStat(stat: EntryStat | Error): EntryStat {
  if (stat instanceof Error) throw stat
  return stat
}

t.test('a scan lists every entry in byte order with lstat, xattrs and link targets', async (t) => {
  const expectedNames = fs.readdirSync(dir, { encoding: 'buffer' }).sort(Buffer.compare)
  const scan = await scanDirectory(dir)
  const entries = [...scan.entries]
  t.same(entries.map((e) => e.name), expectedNames, 'names as bytes, sorted like Buffer.compare')
  t.same(entries.map((e) => e.index), entries.map((_, i) => i), 'each entry knows its place')
  t.same(entries.map((_, i) => scan.entries.modeAt(i)), entries.map((e) => asStat(e.stat).mode), 'modes read without parsing the entry')
  t.throws(() => scan.entries.at(entries.length), RangeError)
  for (const e of entries) {
    const st = asStat(e.stat)
    // The times a scan reports are those the entries keep after it (a symlink's atime after its readlink).
    const node = fs.lstatSync(at(e.name), { bigint: true })
    t.same(
      [st.mode, st.uid, st.gid, st.ino, st.dev, st.nlink, st.size, st.atimeNs, st.mtimeNs, st.ctimeNs],
      [Number(node.mode), Number(node.uid), Number(node.gid), node.ino, Number(node.dev), Number(node.nlink), Number(node.size), node.atimeNs, node.mtimeNs, node.ctimeNs],
      `${e.name.toString('latin1').slice(0, 20)}: lstat fields`,
    )
  }
  const file = entries.find((e) => e.name.toString() === 'b-file')!
  t.equal(asStat(file.stat).mtimeNs, 123_456_789_012_345_678n, 'nanosecond mtime')
  t.equal(asStat(file.stat).atimeNs, -1_500_000_001n, 'pre-1970 atime')
  t.equal(asStat(file.stat).nlink, 2, 'hardlink count')
  t.same(file.xattrs, [[Buffer.from('user.alpha'), Buffer.from('first')], [Buffer.from('user.zeta'), Buffer.from([0, 1, 2])]], 'xattrs sorted by name, values as bytes')
  const link = entries.find((e) => e.name.toString() === 'c-link')!
  t.same(link.target, Buffer.from([0x2e, 0x2f, 0xff, 0xfe]), 'symlink target bytes')
  t.equal(file.target, undefined, 'no target for a file')
})

t.test('a scan changes no times: scanning twice gives the same bytes', async (t) => {
  // On a relatime mount (Linux's default) a read sets the atime only when it
  // is not newer than the mtime: set them so first, so that a scan that did
  // change times would show it. The directory is read with O_NOATIME, and a
  // symlink's atime is taken after its readlink.
  const link = at('c-link')
  const linkMtime = fs.lstatSync(link, { bigint: true }).mtimeNs
  setTimesSync(link, linkMtime - 1_000_000_000n, linkMtime)
  const dirMtime = fs.statSync(dir, { bigint: true }).mtimeNs
  setTimesSync(dir, dirMtime - 1_000_000_000n, dirMtime)
  const dirAtime = fs.statSync(dir, { bigint: true }).atimeNs

  const first = await scanDirectory(dir)
  const second = await scanDirectory(dir)
  t.ok(first.raw.equals(second.raw), 'identical scans, the symlink included')
  t.equal(fs.statSync(dir, { bigint: true }).atimeNs, dirAtime, 'reading a directory leaves its atime')
})

t.test('given names are described in the given order; a missing one is an ENOENT entry', async (t) => {
  const entries = [...(await scanDirectory(dir, [Buffer.from('c-link'), Buffer.from('gone'), latin1])).entries]
  t.same(entries.map((e) => e.name), [Buffer.from('c-link'), Buffer.from('gone'), latin1])
  const gone = entries[1]!
  t.ok(gone.stat instanceof Error && gone.stat.code === 'ENOENT', 'ENOENT')
  t.match((gone.stat as Error).message, /gone/, 'the message names the path')
  t.notOk(entries[2]!.stat instanceof Error)
  const scan = await scanDirectory(dir, [Buffer.from('gone')])
  t.equal(scan.entries.modeAt(0), null, 'no mode for an entry lstat failed on')
  const self = await scanDirectory(Buffer.from('/'), [Buffer.from('.')])
  t.equal(asStat(self.entries.at(0).stat).ino, fs.lstatSync('/', { bigint: true }).ino, "'.' describes the directory itself")
})

t.test('a directory that cannot be read rejects with a SystemError-shaped error', async (t) => {
  await t.rejects(scanDirectory(at('no-such-dir')), { code: 'ENOENT', syscall: 'opendir' })
  await t.rejects(scanDirectory(at('b-file')), { code: 'ENOTDIR', syscall: 'opendir' })
})

t.test('the scanner reads ahead what the walk will enter, and serves each directory once', async (t) => {
  const tree = join(root, 'tree')
  for (let i = 0; i < 20; i++) {
    fs.mkdirSync(join(tree, `s${i}`, 'inner'), { recursive: true })
    fs.writeFileSync(join(tree, `s${i}`, 'inner', 'f'), String(i))
  }
  interface Dir { path: Buffer; order: Buffer[] }
  const expanded: string[] = []
  const scanner = new DirectoryScanner<Dir>((dir, scan) => {
    expanded.push(dir.path.toString())
    return [...scan.entries].filter((e) => !(e.stat instanceof Error) && (e.stat.mode & fs.constants.S_IFMT) === fs.constants.S_IFDIR).map((e) => ({ path: Buffer.concat([dir.path, Buffer.from('/'), e.name]), order: [...dir.order, e.name] }))
  })
  // Walk depth-first as create.ts does, and collect the files' sizes.
  const sizes: number[] = []
  const walk = async (dir: Dir): Promise<void> => {
    const { scan, subdirs } = await scanner.scan(dir)
    for (const sub of subdirs) await walk(sub)
    for (const e of scan.entries) if (!(e.stat instanceof Error) && e.stat.mode & fs.constants.S_IFREG && e.name.toString() === 'f') sizes.push(e.stat.size)
  }
  await walk({ path: Buffer.from(tree), order: [] })
  t.equal(sizes.length, 20, 'every file found once')
  t.same(sizes.sort(), Array.from({ length: 20 }, (_, i) => String(i).length).sort(), 'with its size')
  t.equal(expanded.length, 41, 'each directory scanned and expanded exactly once (root, 20 dirs, 20 inner)')
  t.equal(new Set(expanded).size, 41)
})
