/**
 * A progress bar for the bulk account commands, on standard error and only
 * when it is a terminal: in a script or a log, a bar is noise (carriage
 * returns in a file), so there the command prints its summary lines alone.
 */

export interface ProgressOutput {
  isTTY?: boolean;
  columns?: number;
  write(s: string): unknown;
}

const WIDTH = 30;
/** Redraws at most this often: a terminal needs no more, and drawing costs. */
const EVERY_MS = 100;

export class ProgressBar {
  private done = 0;
  private drawn = 0;
  private readonly started = Date.now();
  private readonly tty: boolean;

  constructor(private readonly label: string, private readonly total: number | undefined, private readonly out: ProgressOutput = process.stderr) {
    this.tty = out.isTTY === true;
  }

  /** `n` more accounts handled. */
  advance(n: number): void {
    this.done += n;
    if (!this.tty) return;
    const now = Date.now();
    if (now - this.drawn < EVERY_MS && this.done !== this.total) return;
    this.drawn = now;
    this.out.write(`\r${this.line()}\u001b[K`);
  }

  private line(): string {
    const secs = (Date.now() - this.started) / 1000;
    const rate = secs > 0 ? Math.round(this.done / secs) : 0;
    if (this.total === undefined || this.total === 0) return `${this.label} ${this.done.toLocaleString("en")} accounts, ${rate.toLocaleString("en")}/s`;
    const share = Math.min(1, this.done / this.total);
    const full = Math.round(share * WIDTH);
    return `${this.label} [${"#".repeat(full)}${".".repeat(WIDTH - full)}] ${this.done.toLocaleString("en")}/${this.total.toLocaleString("en")} ` +
      `${Math.floor(share * 100)}% ${rate.toLocaleString("en")}/s`;
  }

  /** Clears the bar, so that the summary lines that follow start on a clean line. */
  finish(): void {
    if (this.tty && this.drawn > 0) this.out.write("\r\u001b[K");
  }

  /** Something to say while the bar is up (a skipped account): on its own line, the bar redrawn below. */
  say(line: string): void {
    if (this.tty && this.drawn > 0) this.out.write(`\r\u001b[K${line}\n${this.line()}`);
    else this.out.write(`${line}\n`);
  }
}
