/**
 * Compares two directory trees the way a user would check a restore:
 * every name as bytes, type, mode, owner, size, content, mtime to the
 * nanosecond, symlink targets, xattrs, and which names are hardlinks of
 * each other. Returns a list of differences (empty when equal).
 */
import { createHash } from 'node:crypto'
import { promises as fs, type BigIntStats } from 'node:fs'
import { getXattr, listXattrs } from '../../dist/lib/native/posix.js'

interface Entry {
  st: BigIntStats
  digest?: string
  target?: string
  xattrs: string
}

async function scan(root: Buffer, rel: Buffer, out: Map<string, Entry>, ignore: (rel: string) => boolean): Promise<void> {
  const dir = rel.length ? Buffer.concat([root, Buffer.from('/'), rel]) : root
  for (const name of await fs.readdir(dir, { encoding: 'buffer' })) {
    const childRel = rel.length ? Buffer.concat([rel, Buffer.from('/'), name]) : name
    const key = childRel.toString('latin1')
    if (ignore(key)) continue
    const full = Buffer.concat([root, Buffer.from('/'), childRel])
    const st = await fs.lstat(full, { bigint: true })
    const names = (await listXattrs(full).catch(() => [] as Buffer[])).sort(Buffer.compare)
    const xattrs: string[] = []
    for (const n of names) xattrs.push(`${n.toString('hex')}=${(await getXattr(full, n))?.toString('hex')}`)
    const entry: Entry = { st, xattrs: xattrs.join(',') }
    if (st.isFile()) entry.digest = createHash('sha256').update(await fs.readFile(full)).digest('hex')
    if (st.isSymbolicLink()) entry.target = (await fs.readlink(full, { encoding: 'buffer' })).toString('hex')
    out.set(key, entry)
    if (st.isDirectory()) await scan(root, childRel, out, ignore)
  }
}

export interface CompareOptions {
  ignore?: (relLatin1: string) => boolean
  owners?: boolean
}

export async function compareTrees(a: string, b: string, options: CompareOptions = {}): Promise<string[]> {
  const ignore = options.ignore ?? (() => false)
  const left = new Map<string, Entry>()
  const right = new Map<string, Entry>()
  await scan(Buffer.from(a), Buffer.alloc(0), left, ignore)
  await scan(Buffer.from(b), Buffer.alloc(0), right, ignore)
  const diffs: string[] = []
  const show = (k: string): string => JSON.stringify(Buffer.from(k, 'latin1').toString())
  for (const k of left.keys()) if (!right.has(k)) diffs.push(`missing: ${show(k)}`)
  for (const k of right.keys()) if (!left.has(k)) diffs.push(`extra: ${show(k)}`)
  const linkGroup = (m: Map<string, Entry>): Map<string, string> => {
    const byIno = new Map<bigint, string[]>()
    for (const [k, e] of m) if (e.st.isFile() && e.st.nlink > 1n) byIno.set(e.st.ino, [...(byIno.get(e.st.ino) ?? []), k])
    const group = new Map<string, string>()
    for (const names of byIno.values()) for (const n of names) group.set(n, names.sort().join('|'))
    return group
  }
  const groupsLeft = linkGroup(left)
  const groupsRight = linkGroup(right)
  for (const [k, x] of left) {
    const y = right.get(k)
    if (!y) continue
    const field = (name: string, p: unknown, q: unknown): void => {
      if (p !== q) diffs.push(`${name} differs for ${show(k)}: ${String(p)} != ${String(q)}`)
    }
    field('mode', x.st.mode, y.st.mode)
    if (!x.st.isDirectory()) field('size', x.st.size, y.st.size)
    field('mtime', x.st.mtimeNs, y.st.mtimeNs)
    field('content', x.digest, y.digest)
    field('symlink target', x.target, y.target)
    field('xattrs', x.xattrs, y.xattrs)
    field('hardlinks', groupsLeft.get(k), groupsRight.get(k))
    if (options.owners) {
      field('uid', x.st.uid, y.st.uid)
      field('gid', x.st.gid, y.st.gid)
    }
  }
  return diffs
}
