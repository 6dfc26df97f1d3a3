/** Pack ids (hex) numbered densely, so index entries store a small integer instead of 32 bytes. */
export class PackTable {
  private readonly ids: string[] = []
  private readonly numbers = new Map<string, number>()

  numberOf(packId: string): number {
    let n = this.numbers.get(packId)
    if (n === undefined) {
      n = this.ids.length
      this.ids.push(packId)
      this.numbers.set(packId, n)
    }
    return n
  }

  idOf(n: number): string {
    const id = this.ids[n]
    if (id === undefined) throw new RangeError(`no pack number ${n}`)
    return id
  }

  all(): readonly string[] {
    return this.ids
  }
}

export function packKey(packId: string): string {
  return `data/${packId.slice(0, 2)}/${packId}`
}
