/** Reading back a listing in lowlevel.c's packed form (mount/fuse-dispatch.ts, FuseListing). */
import { FuseListing, type FuseHandlers, type FuseResult } from '../../dist/mount/fuse-dispatch.js'

export interface ListedEntry {
  name: Buffer
  ino: bigint
  mode: number
}

/** The entries of a packed listing, `.` and `..` included. */
export function unpackListing(packed: Buffer): ListedEntry[] {
  const out: ListedEntry[] = []
  for (let p = 0; p < packed.length;) {
    const ino = packed.readBigUInt64LE(p)
    const mode = packed.readUInt32LE(p + 8)
    const end = packed.indexOf(0, p + 12)
    out.push({ name: packed.subarray(p + 12, end), ino, mode })
    p = end + 1
  }
  return out
}

/** What a handler lists for `node`, without `.` and `..`, or its errno. */
export async function listed<N>(handlers: FuseHandlers<N>, node: N): Promise<FuseResult<ListedEntry[]>> {
  const listing = new FuseListing(1n)
  const r = await handlers.readdir(node, listing)
  if (typeof r === 'number') return r
  return unpackListing(listing.packed).slice(2)
}
