/** A one-line progress bar on a terminal's stderr (nothing when stderr is not a TTY). */
export class ProgressBar {
  private readonly enabled: boolean
  private lastLine = ''

  constructor(
    private readonly label: string,
    private readonly out: NodeJS.WriteStream = process.stderr,
  ) {
    this.enabled = out.isTTY === true
  }

  update(done: number, total: number): void {
    if (!this.enabled || total <= 0) return
    const width = 30
    const frac = Math.min(1, done / total)
    const filled = Math.round(frac * width)
    const line = `${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(frac * 100).toFixed(0)}%`
    if (line !== this.lastLine) {
      this.out.write(`\r${line}`)
      this.lastLine = line
    }
  }

  done(): void {
    if (this.enabled && this.lastLine !== '') this.out.write('\r' + ' '.repeat(this.lastLine.length) + '\r')
  }
}
