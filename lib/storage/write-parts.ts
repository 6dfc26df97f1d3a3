import type { FileHandle } from 'node:fs/promises'

/** writev in groups (the kernel takes at most IOV_MAX = 1024 buffers per call), resuming after short writes. */
export async function writeParts(handle: FileHandle, parts: readonly Uint8Array[]): Promise<void> {
  let pending = parts.filter((p) => p.length > 0)
  while (pending.length > 0) {
    const group = pending.slice(0, 1024)
    let { bytesWritten } = await handle.writev(group as NodeJS.ArrayBufferView[])
    let i = 0
    while (i < group.length && bytesWritten >= group[i]!.length) bytesWritten -= group[i++]!.length
    pending = i < group.length ? [group[i]!.subarray(bytesWritten), ...pending.slice(i + 1)] : pending.slice(group.length)
  }
}
