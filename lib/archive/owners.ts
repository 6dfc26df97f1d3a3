/**
 * User and group names for ids, read once from /etc/passwd and /etc/group
 * (Node has no getpwuid). Archives keep both the numeric ids and the names,
 * so extract can map owners by name on another machine, as tar and borg do.
 */
import { promises as fs } from 'node:fs'

export class OwnerNames {
  private constructor(
    private readonly usersById: Map<number, string>,
    private readonly groupsById: Map<number, string>,
  ) {}

  static async load(): Promise<OwnerNames> {
    const [users, groups] = await Promise.all([readTable('/etc/passwd'), readTable('/etc/group')])
    return new OwnerNames(users, groups)
  }

  /** Changes when any id's name does: the tree cache's trees hold the names. */
  fingerprint(): string {
    return JSON.stringify([[...this.usersById], [...this.groupsById]])
  }

  user(uid: number): string | undefined {
    return this.usersById.get(uid)
  }

  group(gid: number): string | undefined {
    return this.groupsById.get(gid)
  }

  uidOf(name: string): number | undefined {
    for (const [id, n] of this.usersById) if (n === name) return id
    return undefined
  }

  gidOf(name: string): number | undefined {
    for (const [id, n] of this.groupsById) if (n === name) return id
    return undefined
  }
}

async function readTable(file: string): Promise<Map<number, string>> {
  const byId = new Map<number, string>()
  let text = ''
  try {
    text = await fs.readFile(file, 'utf8')
  } catch {
    return byId
  }
  for (const line of text.split('\n')) {
    const [name, , id] = line.split(':')
    const n = Number(id)
    if (name && Number.isInteger(n) && !byId.has(n)) byId.set(n, name)
  }
  return byId
}
