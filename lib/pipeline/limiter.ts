/** At most `slots` holders at a time; the rest wait in order. */
export class Limiter {
  private free: number
  private readonly waiting: (() => void)[] = []

  constructor(slots: number) {
    this.free = slots
  }

  /** Takes a slot if one is free at once (no promise made); false if the caller must wait with acquire(). */
  tryAcquire(): boolean {
    if (this.free === 0) return false
    this.free--
    return true
  }

  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--
      return
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve))
  }

  release(): void {
    const next = this.waiting.shift()
    if (next) next()
    else this.free++
  }
}
