/**
 * Which program a thread belongs to. A FUSE request carries the id of the thread that made it, so the
 * requests of one multithreaded program (fd, a file manager) come with several ids; /proc tells which
 * process each belongs to.
 */
import { readFileSync } from 'node:fs'

/** The process (thread group) of thread `tid`, or undefined when it is gone or unknown (0). */
export function threadGroupOf(tid: number): number | undefined {
  if (!Number.isInteger(tid) || tid <= 0) return undefined
  try {
    const m = /^Tgid:\s*(\d+)$/m.exec(readFileSync(`/proc/${tid}/status`, 'latin1'))
    return m ? Number(m[1]) : undefined
  } catch {
    return undefined
  }
}

/** Whether threads `a` and `b` are of one running program (a thread that is gone is of none). */
export function sameProgram(a: number, b: number): boolean {
  if (a === b) return true
  const group = threadGroupOf(a)
  return group !== undefined && group === threadGroupOf(b)
}
